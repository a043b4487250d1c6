// Package pgtest gives tests a real PostgreSQL: one throwaway cluster per
// test binary (initdb in a temp dir, on a free 127.0.0.1 port, ~1 s), and a
// fresh database per test. With WARDEN_TEST_PG set (a postgres:// URL of a
// role that may CREATE DATABASE) it uses that server instead.
//
// A missing dependency fails the test, naming it: these tests never skip.
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//	func TestX(t *testing.T) { url := pgtest.NewDatabase(t) ... }
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points the tests at an existing server.
const EnvURL = "WARDEN_TEST_PG"

// DefaultBinDir is where the PostgreSQL server binaries are looked for
// (override with WARDEN_PG_BIN).
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

var (
	mainCalled bool
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
	dbCounter  atomic.Int64
)

// Main runs the tests and then stops the shared cluster if a test started
// it (the first Shared or NewDatabase does, so a test binary that needs
// no database starts none).
func Main(m *testing.M) int {
	mainCalled = true
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Shared returns the cluster of this test binary, starting it on first
// use (or using WARDEN_TEST_PG), failing t if it cannot.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	if !mainCalled {
		t.Fatal("PostgreSQL for tests: the package's TestMain must call pgtest.Main")
	}
	sharedOnce.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			shared = Attach(u)
			return
		}
		shared, sharedErr = Start(Options{})
	})
	if sharedErr != nil {
		t.Fatalf("PostgreSQL for tests: %v", sharedErr)
	}
	return shared
}

// NewDatabase creates an empty database on the shared cluster for t,
// dropped when t ends, and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return Shared(t).NewDatabase(t)
}

// Options tune a cluster started by Start.
type Options struct {
	// Durable keeps fsync on (benchmarks). Tests run with fsync off: a
	// clean or immediate server stop still loses nothing, only an OS crash
	// would.
	Durable bool
}

// Cluster is a running PostgreSQL server.
type Cluster struct {
	url  string // superuser URL to database postgres
	dir  string // "" when not ours (WARDEN_TEST_PG)
	bin  string
	port int
	cred *syscall.Credential
	opts Options

	mu  sync.Mutex
	cmd *exec.Cmd
}

// URL returns the URL of database name on the cluster.
func (c *Cluster) URL(name string) string {
	u, err := url.Parse(c.url)
	if err != nil {
		return c.url
	}
	u.Path = "/" + name
	return u.String()
}

// Start initialises and starts a throwaway cluster in a temp dir. As
// root, initdb and postgres run as the postgres user (initdb refuses
// root), and the dir is theirs.
func Start(o Options) (*Cluster, error) {
	bin := os.Getenv("WARDEN_PG_BIN")
	if bin == "" {
		bin = DefaultBinDir
	}
	for _, b := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("PostgreSQL server binary %s not found in %s (install PostgreSQL 15, set WARDEN_PG_BIN to its bin dir, or set %s to a server URL): %w", b, bin, EnvURL, err)
		}
	}
	dir, err := os.MkdirTemp("", "warden-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin, opts: o}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, the PostgreSQL server needs the user postgres to run as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", c.data(), "-U", "postgres", "-A", "trust", "--no-locale", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if c.port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	if err := c.StartServer(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartServer starts the server (again) and waits until it accepts
// connections.
func (c *Cluster) StartServer() error {
	if c.dir == "" {
		return fmt.Errorf("cannot start a server this test did not create (%s is set)", EnvURL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return errors.New("postgres already running")
	}
	fsync := "off"
	if c.opts.Durable {
		fsync = "on"
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), "-D", c.data(),
		"-p", strconv.Itoa(c.port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+c.dir,
		"-c", "fsync="+fsync, "-c", "max_connections=300", "-c", "shared_buffers=32MB")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT}
	logf, err := os.OpenFile(filepath.Join(c.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	c.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.url)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
			return fmt.Errorf("postgres did not accept connections within 30s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StopServer stops the server at once, as a crash would (immediate
// shutdown: clients are cut off, committed transactions survive).
func (c *Cluster) StopServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return nil
	}
	if err := c.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		return err
	}
	c.cmd.Wait() //nolint:errcheck // a signalled exit
	c.cmd = nil
	return nil
}

// Stop stops the server and removes its directory.
func (c *Cluster) Stop() {
	if c.dir == "" {
		return
	}
	c.mu.Lock()
	if c.cmd != nil {
		c.cmd.Process.Signal(syscall.SIGINT) //nolint:errcheck // fast shutdown
		c.cmd.Wait()                         //nolint:errcheck
		c.cmd = nil
	}
	c.mu.Unlock()
	os.RemoveAll(c.dir)
}

// NewDatabase creates an empty database for t, dropped when t ends (when
// the cluster still runs), and returns its URL.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("warden_test_%d_%d", os.Getpid(), dbCounter.Add(1))
	u, err := c.CreateDatabase(context.Background(), name)
	if err != nil {
		t.Fatalf("PostgreSQL for tests: %v", err)
	}
	t.Cleanup(func() { c.DropDatabase(context.Background(), name) }) //nolint:errcheck // best effort
	return u
}

// CreateDatabase creates the empty database name and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.url)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	return c.URL(name), nil
}

// DropDatabase drops the database name, closing its connections.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// Attach returns a Cluster for an existing server (a superuser or
// CREATEDB URL), whose StartServer and StopServer fail.
func Attach(url string) *Cluster { return &Cluster{url: url} }
