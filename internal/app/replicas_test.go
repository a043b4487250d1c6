package app_test

// Scale-out tests: three `warden serve` replicas (app.Run in-process, each
// on its own port) on one real PostgreSQL database behave as one warden.
// An approval given on B releases the call waiting on A, which executes
// exactly once; a kill stops A and B within a second; a config applied to
// the store is served by every replica within a second; the audit trail
// they wrote together verifies; and when PostgreSQL goes away calls fail
// closed and /readyz goes unready, until it is back.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/app/apptest"
	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/cli"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/postgres"
	"github.com/warden-dev/warden/internal/store/postgres/pgtest"
)

// propagation is the contract: a change made anywhere takes effect on
// every replica within a second.
const propagation = time.Second

type cluster struct {
	t        *testing.T
	db       string // postgres URL
	key      string // the shared audit key file
	cfgDir   string
	up       *aprUpstream
	upURL    string
	replicas []*replica
	agent    string
	approver string
	logLevel slog.Level // of the replicas' logs in the test output
}

type replica struct {
	url  string
	stop func()
}

// newCluster starts n replicas on the database db, with the approvals
// config and its upstream, logging at level and above.
func newCluster(t *testing.T, db string, n int, level slog.Level) *cluster {
	t.Helper()
	up := &aprUpstream{hits: map[string]int{}}
	us := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up.mu.Lock()
		up.hits[r.URL.Path]++
		up.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"path":%q}`, r.URL.Path)
	}))
	t.Cleanup(us.Close)
	dir := t.TempDir()
	c := &cluster{t: t, db: db, key: filepath.Join(dir, "audit.key"), cfgDir: filepath.Join(dir, "warden.d"), up: up, upURL: us.URL, logLevel: level}
	if err := os.Mkdir(c.cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.writeConfig(aprConfig)
	if _, err := audit.LoadOrCreateKey(c.key); err != nil {
		t.Fatal(err)
	}
	for range n {
		c.replicas = append(c.replicas, c.start())
	}
	st, err := postgres.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if c.agent, _, err = st.CreateToken(context.Background(), call.Principal{Role: call.RoleAgent, Tenant: "default", Agent: "bot"}); err != nil {
		t.Fatal(err)
	}
	if c.approver, _, err = st.CreateApproverToken(context.Background(), call.Principal{Role: call.RoleApprover, Tenant: "default", Name: "alice"}, approval.Scope{}); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) writeConfig(cfg string) {
	c.t.Helper()
	if err := os.WriteFile(filepath.Join(c.cfgDir, "c.yaml"), fmt.Appendf(nil, cfg, c.upURL), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) start() *replica {
	c.t.Helper()
	srv := apptest.Start(c.t, app.Options{
		ConfigDir: c.cfgDir, DB: c.db, AuditKey: c.key, Grace: 5 * time.Second, ConfigPoll: -1,
		Logger: apptest.Logger(c.t, c.logLevel),
	})
	r := &replica{url: srv.URL}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			if err := srv.Stop(); err != nil {
				c.t.Errorf("app.Run: %v", err)
			}
		})
	}
	return r
}

func (c *cluster) cli(args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), append(args, "--db", c.db), strings.NewReader(""), &out, &errb)
	return code, out.String() + errb.String()
}

func payout(order string) map[string]any {
	return map[string]any{"connector": "pay", "action": "payout", "args": map[string]any{"order": order, "amount": 1}}
}

// within polls cond until it holds or d has passed, and returns how long
// it took and whether it held.
func within(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// load sends allowed calls round robin to every replica until stop is
// closed, and returns the ids of the calls acknowledged as succeeded.
func (c *cluster) load(workers int, stop <-chan struct{}) func() []string {
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := n.Add(1)
				r := c.replicas[int(i)%len(c.replicas)]
				code, m := do(c.t, r.url, "POST", "/v1/calls", c.agent, payout(fmt.Sprintf("load-%d-%d", w, i)))
				if code == http.StatusOK && m["status"] == "succeeded" {
					mu.Lock()
					acked = append(acked, m["id"].(string))
					mu.Unlock()
				} else if code == 0 || code >= 500 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return func() []string {
		wg.Wait()
		return acked
	}
}

func TestReplicas(t *testing.T) {
	c := newCluster(t, pgtest.NewDatabase(t), 3, slog.LevelError)
	a, b, cc := c.replicas[0], c.replicas[1], c.replicas[2]
	stopLoad := make(chan struct{})
	wait := c.load(3, stopLoad)
	loadStopped := false
	defer func() {
		if !loadStopped {
			close(stopLoad)
			wait()
		}
	}()

	t.Run("approval on B releases A's call once", func(t *testing.T) {
		for i := range 3 {
			order := fmt.Sprintf("apr-%d", i)
			code, m := do(t, a.url, "POST", "/v1/calls", c.agent, map[string]any{"connector": "pay", "action": "refund", "args": map[string]any{"order": order, "amount": 5}})
			if code != http.StatusAccepted || m["approval_id"] == nil {
				t.Fatalf("call on A: %d %v", code, m)
			}
			id, apr := m["id"].(string), m["approval_id"].(string)
			released := make(chan map[string]any, 1)
			go func() {
				_, m := do(t, a.url, "GET", "/v1/calls/"+id+"?wait=10s", c.agent, nil)
				released <- m
			}()
			time.Sleep(100 * time.Millisecond) // A's long poll is waiting
			approved := time.Now()
			if code, m := do(t, b.url, "POST", "/v1/approvals/"+apr+"/approve", c.approver, map[string]any{"comment": "ok on B"}); code != http.StatusOK {
				t.Fatalf("approve on B: %d %v", code, m)
			}
			select {
			case m := <-released:
				if m["status"] != "succeeded" {
					t.Fatalf("A's wait returned %v, want succeeded", m)
				}
				if d := time.Since(approved); d > propagation {
					t.Errorf("A's wait returned %v after the approval on B, want within %v", d, propagation)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("A's wait was not released by the approval on B")
			}
			time.Sleep(300 * time.Millisecond) // every replica's sweep has run since
			if n := c.up.count("/refunds/" + order); n != 1 {
				t.Fatalf("refund %s reached the upstream %d times, want exactly once", order, n)
			}
		}
	})

	t.Run("approval from the CLI runs A's call once", func(t *testing.T) {
		// No replica takes this vote: the three race to claim the call in
		// their approved-call sweeps, woken by the store's event.
		code, m := do(t, a.url, "POST", "/v1/calls", c.agent, map[string]any{"connector": "pay", "action": "refund", "args": map[string]any{"order": "cli", "amount": 5}})
		if code != http.StatusAccepted {
			t.Fatalf("call on A: %d %v", code, m)
		}
		id, apr := m["id"].(string), m["approval_id"].(string)
		if code, out := c.cli("approvals", "approve", apr, "--token", c.approver, "--wait", "0"); code != 0 {
			t.Fatalf("approve from the CLI: %d %s", code, out)
		}
		approved := time.Now()
		_, m = do(t, a.url, "GET", "/v1/calls/"+id+"?wait=10s", c.agent, nil)
		if m["status"] != "succeeded" {
			t.Fatalf("A's wait returned %v, want succeeded", m)
		}
		if d := time.Since(approved); d > propagation {
			t.Errorf("the call ran %v after the approval, want within %v", d, propagation)
		}
		time.Sleep(300 * time.Millisecond)
		if n := c.up.count("/refunds/cli"); n != 1 {
			t.Fatalf("refund reached the upstream %d times, want exactly once", n)
		}
	})

	t.Run("kill on C stops A and B within a second", func(t *testing.T) {
		// A pending call on A, cancelled by the kill.
		code, m := do(t, a.url, "POST", "/v1/calls", c.agent, map[string]any{"connector": "pay", "action": "refund", "args": map[string]any{"order": "killed", "amount": 5}})
		if code != http.StatusAccepted {
			t.Fatalf("call on A: %d %v", code, m)
		}
		pendingID := m["id"].(string)
		// Warm the kill caches of A and B.
		for _, r := range []*replica{a, b} {
			if code, m := do(t, r.url, "POST", "/v1/calls", c.agent, payout("warm")); code != http.StatusOK {
				t.Fatalf("call before the kill: %d %v", code, m)
			}
		}
		if code, out := c.cli("kill", "bot", "--reason", "runaway", "--by", "oncall-on-c"); code != 0 {
			t.Fatalf("kill: %d %s", code, out)
		}
		killed := time.Now()
		for name, r := range map[string]*replica{"A": a, "B": b} {
			d, ok := within(propagation, func() bool {
				code, _ := do(t, r.url, "POST", "/v1/calls", c.agent, payout("after-kill"))
				return code == http.StatusForbidden
			})
			if !ok {
				t.Errorf("replica %s still runs calls %v after the kill", name, d)
			}
		}
		if _, ok := within(propagation-time.Since(killed)+100*time.Millisecond, func() bool {
			_, m := do(t, a.url, "GET", "/v1/calls/"+pendingID, c.agent, nil)
			return m["status"] == "refused"
		}); !ok {
			t.Errorf("the pending call on A was not refused within %v of the kill", propagation)
		}
		if code, out := c.cli("revive", "bot", "--by", "oncall"); code != 0 {
			t.Fatalf("revive: %d %s", code, out)
		}
		for name, r := range map[string]*replica{"A": a, "B": b} {
			if _, ok := within(propagation, func() bool {
				code, _ := do(t, r.url, "POST", "/v1/calls", c.agent, payout("after-revive"))
				return code == http.StatusOK
			}); !ok {
				t.Errorf("replica %s still refuses calls after the revive", name)
			}
		}
	})

	t.Run("apply on A is served by B and C within a second", func(t *testing.T) {
		// The new version turns payouts off.
		c.writeConfig(strings.Replace(aprConfig, "refund: ask, payout: on", "refund: ask, payout: off", 1))
		if code, out := c.cli("apply", "--config", c.cfgDir, "--message", "payouts off", "--author", "alice"); code != 0 {
			t.Fatalf("apply: %d %s", code, out)
		}
		for name, r := range map[string]*replica{"B": b, "C": cc} {
			d, ok := within(propagation, func() bool {
				code, _ := do(t, r.url, "POST", "/v1/calls", c.agent, payout("after-apply"))
				return code == http.StatusForbidden
			})
			if !ok {
				t.Errorf("replica %s still serves the old config %v after the apply", name, d)
			}
		}
		// The first version in the store has nothing to roll back to:
		// apply the original config again.
		c.writeConfig(aprConfig)
		if code, out := c.cli("apply", "--config", c.cfgDir, "--message", "payouts on", "--author", "alice"); code != 0 {
			t.Fatalf("apply: %d %s", code, out)
		}
		for name, r := range map[string]*replica{"A": a, "B": b, "C": cc} {
			if _, ok := within(propagation, func() bool {
				code, _ := do(t, r.url, "POST", "/v1/calls", c.agent, payout("after-rollback"))
				return code == http.StatusOK
			}); !ok {
				t.Errorf("replica %s did not serve the next version within %v", name, propagation)
			}
		}
	})

	t.Run("revoked token refused everywhere within a second", func(t *testing.T) {
		st, err := postgres.Open(context.Background(), c.db, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		tok, info, err := st.CreateToken(context.Background(), call.Principal{Role: call.RoleAgent, Tenant: "default", Agent: "bot"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range c.replicas {
			if code, m := do(t, r.url, "POST", "/v1/calls", tok, payout("tok")); code != http.StatusOK {
				t.Fatalf("new token: %d %v", code, m)
			}
		}
		if err := st.RevokeToken(context.Background(), info.ID); err != nil {
			t.Fatal(err)
		}
		for i, r := range c.replicas {
			if _, ok := within(propagation, func() bool {
				code, _ := do(t, r.url, "POST", "/v1/calls", tok, payout("revoked"))
				return code == http.StatusUnauthorized
			}); !ok {
				t.Errorf("replica %d still accepts a revoked token", i)
			}
		}
	})

	close(stopLoad)
	loadStopped = true
	acked := wait()
	if len(acked) == 0 {
		t.Fatal("the load made no call")
	}
	for _, r := range c.replicas {
		r.stop() // the final checkpoints
	}
	code, out := c.cli("audit", "verify", "--audit-key", c.key)
	if code != 0 || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("audit verify: %d %s", code, out)
	}
	t.Logf("%d calls under load; %s", len(acked), strings.TrimSpace(out))
}

// TestReplicasDatabaseRestart: PostgreSQL stops under load and starts
// again. Meanwhile calls fail closed (503) and /readyz is unready; after,
// service resumes without a restart, every call acknowledged before,
// during or after has its records, and the trail verifies.
func TestReplicasDatabaseRestart(t *testing.T) {
	pg, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		t.Fatalf("PostgreSQL for this test: %v", err)
	}
	t.Cleanup(pg.Stop)
	c := newCluster(t, pg.NewDatabase(t), 2, slog.LevelError+4) // errors expected while PostgreSQL is down
	stopLoad := make(chan struct{})
	wait := c.load(4, stopLoad)
	time.Sleep(500 * time.Millisecond)

	if err := pg.StopServer(); err != nil {
		t.Fatal(err)
	}
	for i, r := range c.replicas {
		if _, ok := within(10*time.Second, func() bool {
			code, _ := do(t, r.url, "GET", "/readyz", "", nil)
			return code == http.StatusServiceUnavailable
		}); !ok {
			t.Errorf("replica %d stays ready with PostgreSQL down", i)
		}
		// The token is cached for a moment; past it, calls fail closed.
		if _, ok := within(10*time.Second, func() bool {
			code, _ := do(t, r.url, "POST", "/v1/calls", c.agent, payout(fmt.Sprintf("down-%d", i)))
			return code == http.StatusServiceUnavailable
		}); !ok {
			t.Errorf("replica %d does not fail closed with PostgreSQL down", i)
		}
	}
	if err := pg.StartServer(); err != nil {
		t.Fatal(err)
	}
	for i, r := range c.replicas {
		if _, ok := within(20*time.Second, func() bool {
			code, _ := do(t, r.url, "POST", "/v1/calls", c.agent, payout(fmt.Sprintf("back-%d", i)))
			return code == http.StatusOK
		}); !ok {
			t.Fatalf("replica %d did not resume after PostgreSQL came back", i)
		}
		if code, _ := do(t, r.url, "GET", "/readyz", "", nil); code != http.StatusOK {
			t.Errorf("replica %d: /readyz %d after PostgreSQL came back", i, code)
		}
	}
	time.Sleep(300 * time.Millisecond)
	close(stopLoad)
	acked := wait()

	st, err := postgres.Open(context.Background(), c.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range acked {
		recs, err := st.AuditRecords(context.Background(), store.AuditFilter{CallID: id})
		if err != nil {
			t.Fatal(err)
		}
		var decided, outcome bool
		for _, r := range recs {
			decided = decided || r.Kind == audit.KindDecision
			outcome = outcome || r.Kind == audit.KindOutcome
		}
		if !decided || !outcome {
			t.Errorf("acknowledged call %s has records %s, want its decision and outcome", id, kinds(recs))
		}
	}
	for _, r := range c.replicas {
		r.stop()
	}
	if code, out := c.cli("audit", "verify", "--audit-key", c.key); code != 0 || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("audit verify: %d %s", code, out)
	}
	t.Logf("%d calls acknowledged across the restart", len(acked))
}

// TestPostgresNeedsAuditKey: with a postgres store there is no default
// audit key (every replica must sign with the one shared key); the error
// says so and never shows the database password.
func TestPostgresNeedsAuditKey(t *testing.T) {
	err := app.Run(context.Background(), app.Options{ConfigDir: t.TempDir(), DB: "postgres://warden:pw-s3cret@127.0.0.1:1/warden", Addr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "--audit-key") || strings.Contains(err.Error(), "pw-s3cret") {
		t.Fatalf("err = %v, want one asking for --audit-key", err)
	}
}
