// Package apptest runs warden in-process for tests: app.Run, the composition
// root `warden serve` uses, on 127.0.0.1 with a free port, its config and
// database in a temp dir. Only tests import it.
package apptest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/app"
)

const (
	startTimeout = 20 * time.Second // until Ready
	stopTimeout  = 30 * time.Second // from cancel until Run returns
)

// Config writes yaml as warden.yaml into a fresh config dir in a temp dir
// and returns that dir and a database path beside it.
func Config(t testing.TB, yaml string) (cfgDir, db string) {
	t.Helper()
	dir := t.TempDir()
	cfgDir = filepath.Join(dir, "config")
	if err := os.Mkdir(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "warden.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgDir, filepath.Join(dir, "warden.db")
}

// Logger is a text logger on the test's output at level.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// Server is warden running in-process.
type Server struct {
	URL string // http://127.0.0.1:PORT

	cancel   context.CancelFunc
	done     chan struct{} // closed when Run has returned; err is then set
	err      error
	returned atomic.Bool // Stop has handed Run's result to the test
}

// Start runs app.Run with o and returns once it serves. It fills in Addr
// (127.0.0.1:0) unless set, Ready, and Logger (Logger(t, slog.LevelWarn))
// unless set. If Run returns before serving, or does not serve within 20s,
// the test fails at once. A cleanup stops the server and reports an error
// from Run unless the test has already called Stop.
func Start(t testing.TB, o app.Options) *Server {
	t.Helper()
	ready := make(chan string, 1)
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	o.Ready = ready
	if o.Logger == nil {
		o.Logger = Logger(t, slog.LevelWarn)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = app.Run(ctx, o)
	}()
	t.Cleanup(func() {
		reported := s.returned.Load()
		if err := s.Stop(); err != nil && !reported {
			t.Errorf("app.Run: %v", err)
		}
	})
	select {
	case addr := <-ready:
		s.URL = "http://" + addr
	case <-s.done:
		s.returned.Store(true)
		t.Fatalf("app.Run returned before serving: %v", s.err)
	case <-time.After(startTimeout):
		t.Fatalf("warden did not start within %v", startTimeout)
	}
	return s
}

// Stop ends Run's context and returns what Run returned, or an error if it
// has not returned within 30s. It may be called more than once.
func (s *Server) Stop() error {
	s.returned.Store(true)
	s.cancel()
	select {
	case <-s.done:
		return s.err
	case <-time.After(stopTimeout):
		return errors.New("app.Run did not return within " + stopTimeout.String() + " of its context ending")
	}
}

// Cancel ends Run's context without waiting: Run begins its graceful
// shutdown; Done is closed once it has returned.
func (s *Server) Cancel() { s.cancel() }

// Done is closed once Run has returned.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is what Run returned; valid once Done is closed.
func (s *Server) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}
