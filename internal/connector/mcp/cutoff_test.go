package mcp_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mcpconn "github.com/warden-dev/warden/internal/connector/mcp"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/secret"
)

// TestCutOffDoesNotWaitForOtherCalls: a cancelled call (the kill switch, a
// client gone) returns at once and leaves the shared upstream and its other
// calls alone; a timed-out call kills the hung process and returns right
// after its timeout, without waiting for the other calls on it.
func TestCutOffDoesNotWaitForOtherCalls(t *testing.T) {
	const timeout = 5 * time.Second
	pool := mcpconn.NewPool(nil)
	defer pool.Close()
	ex := newExecutor(t, pool, stdioConnector(t, "cut", timeout, nil, nil), secret.NewRedactor())
	p1 := pid(t, ex)

	type result struct {
		out *dispatch.Outcome
		d   time.Duration
	}
	other := make(chan result, 1)
	t0 := time.Now()
	go func() {
		out, _ := ex.Execute(context.Background(), "hang", nil)
		other <- result{out, time.Since(t0)}
	}()
	time.Sleep(300 * time.Millisecond)

	// Cancelled while the other call still hangs on the same upstream.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	c0 := time.Now()
	out, err := ex.Execute(ctx, "hang", nil)
	if err != nil || !out.Failed {
		t.Fatalf("cancelled hang: %+v, %v", out, err)
	}
	if d := time.Since(c0); d > 2*time.Second {
		t.Errorf("the cancelled call returned after %s: it waited for the other call on its upstream", d)
	}
	select {
	case r := <-other:
		t.Fatalf("the cancellation ended the other call too (after %s): %+v", r.d, r.out)
	default:
	}
	// The shared upstream was left alone.
	if p := pid(t, ex); p != p1 {
		t.Errorf("a cancelled call restarted the upstream (%d, was %d)", p, p1)
	}

	// The other call times out: it returns right after its timeout, and
	// the hung process is killed.
	r := <-other
	if !r.out.Failed || !strings.Contains(r.out.Error, "did not answer in time") {
		t.Errorf("timed-out hang: %+v", r.out)
	}
	if r.d > timeout+time.Second {
		t.Errorf("the timed-out call returned after %s (timeout %s)", r.d, timeout)
	}
	gone(t, p1)
	if p := eventually(t, ex); p == p1 {
		t.Error("the hung upstream was not replaced")
	}

	// Two calls hanging together both return at their timeouts: the first
	// kill ends the other's call too, rather than the second waiting.
	p2 := pid(t, ex)
	done := make(chan time.Duration, 2)
	t1 := time.Now()
	for range 2 {
		go func() {
			_, _ = ex.Execute(context.Background(), "hang", nil)
			done <- time.Since(t1)
		}()
	}
	for range 2 {
		if d := <-done; d > timeout+time.Second {
			t.Errorf("a hung call returned after %s (timeout %s)", d, timeout)
		}
	}
	gone(t, p2)
}

// TestBackoffGrowsWhenAnUpstreamDiesAfterStarting: an upstream that
// starts fine and then dies on every call is restarted with a growing
// backoff (200 ms, 400 ms, 800 ms, 1.6 s...), not every 200 ms.
func TestBackoffGrowsWhenAnUpstreamDiesAfterStarting(t *testing.T) {
	spawns := filepath.Join(t.TempDir(), "spawns")
	pool := mcpconn.NewPool(nil)
	defer pool.Close()
	c := stdioConnector(t, "flaky", 5*time.Second, map[string]string{spawnsEnv: spawns}, nil)
	ex := newExecutor(t, pool, c, secret.NewRedactor())
	stop := make(chan struct{})
	loop := make(chan struct{})
	go func() {
		defer close(loop)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _ = ex.Execute(ctx, "crash", nil)
			cancel()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	time.Sleep(2 * time.Second)
	b, _ := os.ReadFile(spawns)
	n := len(strings.Fields(string(b)))
	close(stop)
	pool.Close()
	<-loop
	// 0, ~0.2, ~0.6, ~1.4 s: four starts; every 200 ms would be ~8.
	if n < 2 || n > 5 {
		t.Errorf("%d starts in 2s of an upstream that dies after each start; want 2-5 (a growing backoff)", n)
	}
}

// TestRetain: an upstream whose launch the live config no longer has is
// stopped; the kept one runs on; a call still made under the old config
// gets a short-lived upstream that does not outlive it.
func TestRetain(t *testing.T) {
	pool := mcpconn.NewPool(nil)
	defer pool.Close()
	red := secret.NewRedactor()
	keep := newExecutor(t, pool, stdioConnector(t, "keep", 10*time.Second, nil, nil), red)
	drop := newExecutor(t, pool, stdioConnector(t, "drop", 10*time.Second, nil, nil), red)
	pk, pd := pid(t, keep), pid(t, drop)

	// The next config version has only "keep".
	next := newExecutor(t, pool, stdioConnector(t, "keep", 10*time.Second, nil, nil), red)
	pool.Retain([]string{next.Upstream()})
	gone(t, pd)
	if syscall.Kill(pk, 0) != nil {
		t.Fatal("the kept upstream was stopped")
	}
	if p := pid(t, next); p != pk {
		t.Errorf("the kept upstream was replaced (%d, was %d)", p, pk)
	}

	// A late call under the old version: its own upstream, stopped after.
	p := pid(t, drop)
	if p == pd {
		t.Fatal("the dropped upstream still ran")
	}
	gone(t, p)
}
