// Package storetest is the one conformance suite every store backend
// passes (store/sqlite and store/postgres): tokens, calls and approvals
// (conditional commits, exactly-once claims), kill switches, config
// versions, secrets, usage, stats, and the audit trail (chain, checkpoints,
// verification, several stores appending to one database at once).
//
//	func TestConformance(t *testing.T) { storetest.Run(t, backend) }
package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/secret"
	"github.com/warden-dev/warden/internal/store"
)

// Options are what the suite asks of an opened store.
type Options struct {
	Signer          *audit.Signer
	CheckpointEvery int
}

// Backend opens stores of one kind.
type Backend struct {
	// NewDB returns a fresh, empty database (a path or URL) for t.
	NewDB func(t *testing.T) string
	// Open opens the store at db; several may be open on one db at once,
	// as several processes or replicas would.
	Open func(t *testing.T, db string, o Options) store.Store
}

// Run runs every conformance test against b.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"Tokens", testTokens},
		{"ApproverTokens", testApproverTokens},
		{"KillSwitches", testKillSwitches},
		{"ConfigVersions", testConfigVersions},
		{"CommitConditional", testCommitConditional},
		{"ClaimExactlyOnce", testClaimExactlyOnce},
		{"CallQueries", testCallQueries},
		{"Secrets", testSecrets},
		{"Usage", testUsage},
		{"Stats", testStats},
		{"AwkwardJSON", testAwkwardJSON},
		{"AuditChain", testAuditChain},
		{"AuditRecords", testAuditRecords},
		{"AuditSeveralStores", testAuditSeveralStores},
		{"BadRecordFailsAlone", testBadRecordFailsAlone},
		{"AppendCancelled", testAppendCancelled},
		{"CloseWhileAppending", testCloseWhileAppending},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

func open(t *testing.T, b Backend, o Options) store.Store {
	t.Helper()
	s := b.Open(t, b.NewDB(t), o)
	t.Cleanup(func() { s.Close() })
	return s
}

// NewSigner returns a signer with a fresh key.
func NewSigner(t testing.TB) *audit.Signer {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var t0 = time.Date(2026, 11, 3, 3, 0, 0, 0, time.UTC)

func record(agent string, i int) *audit.Record {
	return &audit.Record{
		Time: t0.Add(time.Duration(i) * time.Minute), Tenant: "acme", Agent: agent,
		FrontEnd: audit.FrontEndREST, Kind: audit.KindDecision, CallID: fmt.Sprintf("call-%s-%d", agent, i),
		Connector: "github", Action: "create_pr", Args: []byte(fmt.Sprintf(`{"n": %d}`, i)),
		Decision: "ALLOW", Rules: []string{"rule-a"},
	}
}

func testTokens(t *testing.T, b Backend) {
	ctx := context.Background()
	s := open(t, b, Options{})
	if _, _, err := s.CreateToken(ctx, call.Principal{Role: "boss"}); err == nil {
		t.Error("unknown role accepted")
	}
	if _, _, err := s.CreateToken(ctx, call.Principal{Role: call.RoleAgent, Tenant: "acme"}); err == nil {
		t.Error("agent token without an agent accepted")
	}
	tok, info, err := s.CreateToken(ctx, call.Principal{Role: call.RoleAgent, Tenant: "acme", Agent: "bot", Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	tok2, _, err := s.CreateToken(ctx, call.Principal{Role: call.RoleAgent, Tenant: "acme", Agent: "bot"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, tok)
	if err != nil || p.TokenID != info.ID || p.Role != call.RoleAgent || p.Tenant != "acme" || p.Agent != "bot" || p.Name != "n" {
		t.Fatalf("authenticate: %+v %v", p, err)
	}
	for _, bad := range []string{"", "nope", tok + "x"} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("authenticate %q: %v, want ErrNotFound", bad, err)
		}
	}
	if err := s.RevokeToken(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, info.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second revoke: %v, want ErrNotFound", err)
	}
	if _, err := s.Authenticate(ctx, tok); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoked token: %v", err)
	}
	if n, err := s.RevokeAgentTokens(ctx, "acme", "bot"); err != nil || n != 1 {
		t.Errorf("revoke agent tokens: %d %v, want 1", n, err)
	}
	if _, err := s.Authenticate(ctx, tok2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("agent's revoked token: %v", err)
	}
	ts, err := s.Tokens(ctx)
	if err != nil || len(ts) != 2 || ts[0].RevokedAt == nil || ts[1].RevokedAt == nil || ts[0].CreatedAt.IsZero() {
		t.Fatalf("tokens: %+v %v", ts, err)
	}
}

func testApproverTokens(t *testing.T, b Backend) {
	ctx := context.Background()
	s := open(t, b, Options{})
	scope := approval.Scope{Agents: []string{"bot*"}, Connectors: []string{"github"}}
	if _, _, err := s.CreateApproverToken(ctx, call.Principal{Role: call.RoleAdmin}, scope); err == nil {
		t.Error("approver scope on an admin token accepted")
	}
	_, info, err := s.CreateApproverToken(ctx, call.Principal{Role: call.RoleApprover, Tenant: "acme", Name: "alice"}, scope)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ApproverScope(ctx, info.ID)
	if err != nil || !slices.Equal(got.Agents, scope.Agents) || !slices.Equal(got.Connectors, scope.Connectors) {
		t.Fatalf("scope: %+v %v", got, err)
	}
	if _, err := s.ApproverScope(ctx, "tok_missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("scope of a missing token: %v", err)
	}
	p, err := s.ApproverByName(ctx, "alice")
	if err != nil || p.TokenID != info.ID || p.Role != call.RoleApprover || p.Tenant != "acme" {
		t.Fatalf("approver by name: %+v %v", p, err)
	}
	if _, err := s.ApproverByName(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown approver: %v", err)
	}
}

func testKillSwitches(t *testing.T, b Backend) {
	ctx := context.Background()
	s := open(t, b, Options{})
	if k, err := s.Killed(ctx, "acme", "bot"); k != nil || err != nil {
		t.Fatalf("killed on an empty store: %+v %v", k, err)
	}
	if ok, err := s.Kill(ctx, "acme", "*", "admin:root", "loop"); !ok || err != nil {
		t.Fatalf("kill: %v %v", ok, err)
	}
	if ok, err := s.Kill(ctx, "acme", "*", "admin:other", "again"); ok || err != nil {
		t.Fatalf("second kill: %v %v, want false", ok, err)
	}
	k, err := s.Killed(ctx, "acme", "bot")
	if err != nil || k == nil || k.By != "admin:root" || k.Why != "loop" || k.At.IsZero() {
		t.Fatalf("killed: %+v %v", k, err)
	}
	if k, _ := s.Killed(ctx, "other", "bot"); k != nil {
		t.Errorf("another tenant is killed: %+v", k)
	}
	if _, err := s.Kill(ctx, "*", "*", "admin:root", "all"); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.Killed(ctx, "other", "bot"); k == nil {
		t.Error("kill all does not stop another tenant")
	}
	ks, err := s.KillSwitches(ctx)
	if err != nil || len(ks) != 2 {
		t.Fatalf("kill switches: %+v %v", ks, err)
	}
	for _, sw := range [][2]string{{"acme", "*"}, {"*", "*"}} {
		if ok, err := s.Revive(ctx, sw[0], sw[1]); !ok || err != nil {
			t.Fatalf("revive %v: %v %v", sw, ok, err)
		}
	}
	if ok, _ := s.Revive(ctx, "acme", "*"); ok {
		t.Error("revive of a switch not set reports true")
	}
	if k, _ := s.Killed(ctx, "acme", "bot"); k != nil {
		t.Errorf("still killed after revive: %+v", k)
	}
}

func testConfigVersions(t *testing.T, b Backend) {
	ctx := context.Background()
	s := open(t, b, Options{})
	if live, err := s.LiveConfig(ctx); err != nil || live != "" {
		t.Fatalf("live on an empty store: %q %v", live, err)
	}
	if a, err := s.LiveActivation(ctx); a != nil || err != nil {
		t.Fatalf("live activation on an empty store: %+v %v", a, err)
	}
	if _, _, err := s.RollbackConfig(ctx, "", "x"); !errors.Is(err, store.ErrNoLive) {
		t.Fatalf("rollback with nothing live: %v, want ErrNoLive", err)
	}
	a, bv, c := strings.Repeat("a", 64), "ab"+strings.Repeat("b", 62), strings.Repeat("c", 64)
	apply := func(v string, wantCreated, wantActivated bool) {
		t.Helper()
		created, activated, err := s.ApplyConfig(ctx, store.ConfigVersion{Version: v, Files: map[string]string{"w.yaml": "kind: agent\n"}, Author: "alice", Message: "m " + v[:1]}, "alice")
		if err != nil || created != wantCreated || activated != wantActivated {
			t.Fatalf("apply %s: created %v activated %v err %v; want %v %v", v[:4], created, activated, err, wantCreated, wantActivated)
		}
	}
	live := func(want string) {
		t.Helper()
		if got, err := s.LiveConfig(ctx); err != nil || got != want {
			t.Fatalf("live: %.4s %v, want %.4s", got, err, want)
		}
	}
	apply(a, true, true)
	apply(a, false, false)
	apply(bv, true, true)
	apply(c, true, true)
	live(c)
	for _, step := range []struct{ to, from, target string }{
		{"", c, bv}, {"", bv, a}, {"c", a, c}, {"", c, a},
	} {
		from, target, err := s.RollbackConfig(ctx, step.to, "bob")
		if err != nil || from != step.from || target != step.target {
			t.Fatalf("rollback --to %q: %.4s → %.4s %v; want %.4s → %.4s", step.to, from, target, err, step.from, step.target)
		}
		live(step.target)
	}
	if act, err := s.LiveActivation(ctx); err != nil || act.Version != a || act.Kind != "rollback" || act.By != "bob" || act.At.IsZero() {
		t.Fatalf("live activation: %+v %v", act, err)
	}
	if _, _, err := s.RollbackConfig(ctx, "", "bob"); !errors.Is(err, store.ErrNoPrevious) {
		t.Fatalf("rollback past the first version: %v, want ErrNoPrevious", err)
	}
	if _, _, err := s.RollbackConfig(ctx, "a", "bob"); !errors.Is(err, store.ErrAmbiguous) {
		t.Fatalf("ambiguous prefix: %v", err)
	}
	if _, _, err := s.RollbackConfig(ctx, "d", "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown prefix: %v", err)
	}
	if _, err := s.ConfigVersion(ctx, "'; drop"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("non-hex prefix: %v", err)
	}
	apply(bv, false, true)
	vs, err := s.ConfigVersions(ctx)
	if err != nil || len(vs) != 3 {
		t.Fatalf("versions: %v %v", vs, err)
	}
	for _, v := range vs {
		if v.Live != (v.Version == bv) {
			t.Errorf("version %.4s live %v", v.Version, v.Live)
		}
	}
	cv, err := s.ConfigVersion(ctx, "ab")
	if err != nil || cv.Version != bv || cv.Files["w.yaml"] != "kind: agent\n" || cv.Author != "alice" || !cv.Live || cv.CreatedAt.IsZero() {
		t.Fatalf("version ab: %+v %v", cv, err)
	}
}

func newCall(id, status string, now time.Time) *dispatch.State {
	return &dispatch.State{ID: id, Tenant: "acme", Agent: "bot", Connector: "github", Action: "merge", Status: status,
		CreatedAt: now, UpdatedAt: now, Args: json.RawMessage(`{"pr":1}`)}
}

func testCommitConditional(t *testing.T, b Backend) {
	ctx := context.Background()
	s := open(t, b, Options{})
	now := time.Now().UTC()
	st := newCall("call_1", dispatch.StatusPending, now)
	if err := s.Commit(ctx, &audit.Record{Kind: audit.KindDecision, CallID: st.ID}, st); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CallState(ctx, st.ID); err != nil || got.Status != dispatch.StatusPending || string(got.Args) != `{"pr":1}` || got.Revision != 0 {
		t.Fatalf("call state: %+v %v", got, err)
	}
	if _, err := s.CallState(ctx, "call_missing"); !errors.Is(err, dispatch.ErrNotFound) {
		t.Fatalf("missing call: %v", err)
	}
	a, _ := s.CallState(ctx, st.ID)
	c, _ := s.CallState(ctx, st.ID)
	a.PrevStatus, c.PrevStatus = dispatch.StatusPending, dispatch.StatusPending
	a.Reason = "first vote"
	if err := s.Commit(ctx, &audit.Record{Kind: audit.KindApproval, CallID: st.ID}, a); err != nil {
		t.Fatalf("first change: %v", err)
	}
	c.Reason = "second vote, made to the old revision"
	if err := s.Commit(ctx, &audit.Record{Kind: audit.KindApproval, CallID: st.ID}, c); !errors.Is(err, dispatch.ErrConflict) {
		t.Fatalf("second change: err = %v, want ErrConflict", err)
	}
	got, _ := s.CallState(ctx, st.ID)
	if got.Reason != "first vote" || got.Revision != 1 {
		t.Errorf("state = %q rev %d, want the first vote at revision 1", got.Reason, got.Revision)
	}
	// A change from a status the call is no longer in is refused too.
	got.PrevStatus = dispatch.StatusApproved
	got.Status = dispatch.StatusRunning
	if err := s.Commit(ctx, &audit.Record{Kind: audit.KindApproval, CallID: st.ID}, got); !errors.Is(err, dispatch.ErrConflict) {
		t.Fatalf("change from the wrong status: %v, want ErrConflict", err)
	}
	recs, _ := s.AuditRecords(ctx, store.AuditFilter{CallID: st.ID})
	if len(recs) != 2 {
		t.Errorf("%d records, want 2 (refused changes append nothing)", len(recs))
	}
}

// testClaimExactlyOnce: many stores (replicas) race to claim one approved
// call for execution from the same read; exactly one wins.
func testClaimExactlyOnce(t *testing.T, b Backend) {
	ctx := context.Background()
	db := b.NewDB(t)
	var stores []store.Store
	for range 3 {
		s := b.Open(t, db, Options{})
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	now := time.Now().UTC()
	for i := range 5 {
		st := newCall(fmt.Sprintf("call_%d", i), dispatch.StatusApproved, now)
		if err := stores[0].Commit(ctx, &audit.Record{Kind: audit.KindDecision, CallID: st.ID}, st); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for w := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := stores[w%len(stores)]
				cur, err := s.CallState(ctx, st.ID)
				if err != nil {
					t.Error(err)
					return
				}
				if cur.Status != dispatch.StatusApproved {
					return
				}
				cur.PrevStatus, cur.Status = dispatch.StatusApproved, dispatch.StatusRunning
				err = s.Commit(ctx, &audit.Record{Kind: audit.KindApproval, CallID: st.ID, Agent: fmt.Sprint(w)}, cur)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, dispatch.ErrConflict):
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("call %s claimed %d times, want exactly once", st.ID, n)
		}
		recs, _ := stores[1].AuditRecords(ctx, store.AuditFilter{CallID: st.ID})
		if len(recs) != 2 {
			t.Fatalf("call %s: %d records, want 2", st.ID, len(recs))
		}
	}
}

func testCallQueries(t *testing.T, b Backend) {
	ctx := context.Background()
	s := open(t, b, Options{})
	now := time.Now().UTC()
	past, future := now.Add(-time.Minute), now.Add(time.Hour)
	commit := func(st *dispatch.State) {
		t.Helper()
		if err := s.Commit(ctx, &audit.Record{Kind: audit.KindDecision, CallID: st.ID, Tenant: st.Tenant, Agent: st.Agent}, st); err != nil {
			t.Fatal(err)
		}
	}
	due := newCall("c_due", dispatch.StatusPending, now.Add(-3*time.Second))
	due.ExpiresAt, due.Approval = &past, &approval.Request{ID: "apr_due"}
	later := newCall("c_later", dispatch.StatusPending, now.Add(-2*time.Second))
	later.ExpiresAt, later.Approval = &future, &approval.Request{ID: "apr_later"}
	approved := newCall("c_approved", dispatch.StatusApproved, now.Add(-time.Second))
	approved.Approval = &approval.Request{ID: "apr_ok"}
	running := newCall("c_running", dispatch.StatusRunning, now.Add(-time.Hour))
	other := newCall("c_other", dispatch.StatusPending, now)
	other.Tenant, other.ExpiresAt, other.Approval = "other", &future, &approval.Request{ID: "apr_other"}
	for _, st := range []*dispatch.State{due, later, approved, running, other} {
		commit(st)
	}
	ids := func(sts []*dispatch.State) []string {
		var out []string
		for _, st := range sts {
			out = append(out, st.ID)
		}
		return out
	}
	if got, err := s.DuePending(ctx, now, 10); err != nil || !slices.Equal(ids(got), []string{"c_due"}) {
		t.Errorf("due pending: %v %v", ids(got), err)
	}
	if got, err := s.StaleRunning(ctx, now.Add(-time.Minute), 10); err != nil || !slices.Equal(ids(got), []string{"c_running"}) {
		t.Errorf("stale running: %v %v", ids(got), err)
	}
	if got, err := s.ApprovedCalls(ctx, 10); err != nil || !slices.Equal(ids(got), []string{"c_approved"}) {
		t.Errorf("approved calls: %v %v", ids(got), err)
	}
	if got, err := s.CallByApproval(ctx, "apr_later"); err != nil || got.ID != "c_later" {
		t.Errorf("call by approval: %+v %v", got, err)
	}
	if _, err := s.CallByApproval(ctx, "apr_missing"); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("missing approval: %v", err)
	}
	if got, err := s.ApprovalCalls(ctx, "acme", "", 10); err != nil || !slices.Equal(ids(got), []string{"c_approved", "c_later", "c_due"}) {
		t.Errorf("approval calls of acme: %v %v", ids(got), err)
	}
	if got, err := s.ApprovalCalls(ctx, "", dispatch.StatusPending, 10); err != nil || !slices.Equal(ids(got), []string{"c_other", "c_later", "c_due"}) {
		t.Errorf("pending approval calls: %v %v", ids(got), err)
	}
	if got, err := s.ApprovalCallsSince(ctx, now.Add(-2500*time.Millisecond)); err != nil || !slices.Equal(ids(got), []string{"c_later", "c_approved", "c_other"}) {
		t.Errorf("approval calls since: %v %v", ids(got), err)
	}
	if n, err := s.PendingCount(ctx); err != nil || n != 3 {
		t.Errorf("pending count: %d %v, want 3", n, err)
	}
	if kp, err := s.KilledPending(ctx, 10); err != nil || len(kp) != 0 {
		t.Errorf("killed pending with no kill: %+v %v", kp, err)
	}
	if _, err := s.Kill(ctx, "acme", "bot", "admin:root", "stop"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Kill(ctx, "acme", "*", "admin:root", "stop all"); err != nil {
		t.Fatal(err)
	}
	kp, err := s.KilledPending(ctx, 10)
	if err != nil || len(kp) != 2 || kp[0].State.ID != "c_due" || kp[1].State.ID != "c_later" || kp[0].Kill.Why != "stop" {
		t.Errorf("killed pending: %+v %v", kp, err)
	}
}

func testSecrets(t *testing.T, b Backend) {
	ctx := context.Background()
	s := open(t, b, Options{})
	seal := func(name, key string) store.SealFunc {
		return func(version int64) (*secret.Sealed, error) {
			return &secret.Sealed{Name: name, Version: version, KeyID: key, Nonce: []byte("nonce"), Ciphertext: []byte(fmt.Sprintf("ct-%d", version))}, nil
		}
	}
	if _, err := s.LocalSecret(ctx, "db"); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("missing secret: %v", err)
	}
	if _, err := s.RotateSecret(ctx, "db", seal("db", "k1")); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("rotate a missing secret: %v", err)
	}
	if sl, err := s.CreateSecret(ctx, "db", seal("db", "k1")); err != nil || sl.Version != 1 {
		t.Fatalf("create: %+v %v", sl, err)
	}
	if _, err := s.CreateSecret(ctx, "db", seal("db", "k1")); !errors.Is(err, store.ErrSecretExists) {
		t.Fatalf("create twice: %v", err)
	}
	if sl, err := s.RotateSecret(ctx, "db", seal("db", "k1")); err != nil || sl.Version != 2 {
		t.Fatalf("rotate: %+v %v", sl, err)
	}
	got, err := s.LocalSecret(ctx, "db")
	if err != nil || got.Version != 2 || string(got.Ciphertext) != "ct-2" || string(got.Nonce) != "nonce" || got.CreatedAt.IsZero() || got.RevokedAt != nil {
		t.Fatalf("read: %+v %v", got, err)
	}
	if _, err := s.CreateSecret(ctx, "api", seal("api", "k1")); err != nil {
		t.Fatal(err)
	}
	n, err := s.RekeySecrets(ctx, "k2", func(old *secret.Sealed) (*secret.Sealed, error) {
		return &secret.Sealed{Name: old.Name, Version: old.Version, KeyID: "k2", Nonce: []byte("n2"), Ciphertext: []byte("re-" + string(old.Ciphertext))}, nil
	})
	if err != nil || n != 2 {
		t.Fatalf("rekey: %d %v", n, err)
	}
	if got, _ := s.LocalSecret(ctx, "db"); got.KeyID != "k2" || string(got.Ciphertext) != "re-ct-2" {
		t.Fatalf("after rekey: %+v", got)
	}
	if err := s.RevokeSecret(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSecret(ctx, "db"); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	if got, _ := s.LocalSecret(ctx, "db"); got.RevokedAt == nil || len(got.Ciphertext) != 0 {
		t.Fatalf("revoked secret keeps its ciphertext: %+v", got)
	}
	if sl, err := s.CreateSecret(ctx, "db", seal("db", "k2")); err != nil || sl.Version != 3 {
		t.Fatalf("create after revoke: %+v %v", sl, err)
	}
	list, err := s.Secrets(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "api" || list[1].Name != "db" || list[0].Ciphertext != nil {
		t.Fatalf("list: %+v %v", list, err)
	}
}

func testUsage(t *testing.T, b Backend) {
	ctx := context.Background()
	s := open(t, b, Options{})
	day := "2026-11-03"
	for _, r := range []audit.Record{
		{Kind: audit.KindUsage, Tenant: "acme", Agent: "bot", Time: t0, Tokens: 100, CostUSD: 0.5},
		{Kind: audit.KindUsage, Tenant: "acme", Agent: "bot", Time: t0.Add(time.Hour), Tokens: 50, CostUSD: 0.25},
	} {
		if err := s.RecordUsage(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	u, err := s.Usage(ctx, "acme", "bot", day)
	if err != nil || u.Tokens != 150 || u.CostUSD != 0.75 {
		t.Fatalf("usage: %+v %v", u, err)
	}
	if u, err := s.Usage(ctx, "acme", "other", day); err != nil || u.Tokens != 0 {
		t.Fatalf("no usage: %+v %v", u, err)
	}
}

func testStats(t *testing.T, b Backend) {
	ctx := context.Background()
	s := open(t, b, Options{})
	now := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	add := func(ago time.Duration, r audit.Record) {
		t.Helper()
		r.Time = now.Add(-ago)
		if r.Tenant == "" {
			r.Tenant = "default"
		}
		if err := s.Append(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	add(2*time.Hour, audit.Record{Kind: "decision", Agent: "bot", CallID: "c0", Decision: string(call.Allow)})
	add(50*time.Minute, audit.Record{Kind: "decision", Agent: "bot", CallID: "c1", Connector: "pay", Decision: string(call.Allow)})
	add(50*time.Minute, audit.Record{Kind: "outcome", Agent: "bot", CallID: "c1", Connector: "pay", Decision: string(call.Allow), Outcome: "failed"})
	add(10*time.Minute, audit.Record{Kind: "decision", Agent: "bot", CallID: "c2", Connector: "pay", Decision: string(call.RequireApproval)})
	add(8*time.Minute, audit.Record{Kind: "approval", Agent: "bot", CallID: "c2", Connector: "pay", Decision: string(call.RequireApproval)})
	add(8*time.Minute, audit.Record{Kind: "outcome", Agent: "bot", CallID: "c2", Connector: "pay", Outcome: "succeeded", CostUSD: 0.5, Tokens: 100})
	add(time.Minute, audit.Record{Kind: "decision", Agent: "bot", CallID: "c3", Decision: string(call.Deny), Outcome: "refused"})
	add(time.Minute, audit.Record{Kind: "decision", Tenant: "other", Agent: "bot", CallID: "c4", Decision: string(call.Deny)})
	add(30*time.Second, audit.Record{Kind: "usage", Agent: "bot", CostUSD: 0.25, Tokens: 50})
	add(0, audit.Record{Kind: "decision", Agent: "bot", CallID: "c5", Decision: string(call.Allow)})

	st, err := s.Stats(ctx, store.StatsQuery{Tenant: "default", Since: now.Add(-time.Hour + 300*time.Millisecond), Bucket: 5 * time.Minute}, now)
	if err != nil {
		t.Fatal(err)
	}
	if st.Calls != 4 || st.Decisions["ALLOW"] != 2 || st.Decisions["REQUIRE_APPROVAL"] != 1 || st.Decisions["DENY"] != 1 {
		t.Errorf("calls %d decisions %v, want 4: 2 ALLOW, one of the others", st.Calls, st.Decisions)
	}
	if len(st.Volume) != 12 || st.Volume[2] != 1 || st.Volume[10] != 1 || st.Volume[11] != 2 {
		t.Errorf("volume %v, want 12 buckets with calls 1 in 2, 1 in 10 and 2 in 11", st.Volume)
	}
	if got := st.Connectors["pay"]; got != (store.Outcomes{Succeeded: 1, Failed: 1}) {
		t.Errorf("pay outcomes %+v, want 1 succeeded 1 failed", got)
	}
	if len(st.ApprovalLatency) != 1 || st.ApprovalLatency[0] != 2*time.Minute {
		t.Errorf("approval latency %v, want [2m]", st.ApprovalLatency)
	}
	if got := st.Usage["default/bot"]; got.Tokens != 150 || got.CostUSD != 0.75 {
		t.Errorf("usage %+v, want 150 tokens $0.75", got)
	}
	all, err := s.Stats(ctx, store.StatsQuery{Since: now.Add(-24 * time.Hour), Bucket: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	if all.Calls != 6 || len(all.Volume) != 24 || all.Truncated {
		t.Errorf("every tenant over a day: %d calls in %d buckets (truncated %v), want 6 in 24", all.Calls, len(all.Volume), all.Truncated)
	}
	// A zero bucket is the whole window, even an empty one (Since == now);
	// a sub-second bucket still counts every call, the newest in the last.
	for _, q := range []store.StatsQuery{
		{Tenant: "default", Since: now},
		{Tenant: "default", Since: now.Add(-time.Hour)},
		{Tenant: "default", Since: now, Bucket: 300 * time.Millisecond},
		{Tenant: "default", Since: now.Add(-2 * time.Second), Bucket: 500 * time.Millisecond},
	} {
		want := int64(1)
		if q.Since.Before(now.Add(-time.Minute)) {
			want = 4
		}
		st, err := s.Stats(ctx, q, now)
		if err != nil {
			t.Fatalf("since -%v bucket %v: %v", now.Sub(q.Since), q.Bucket, err)
		}
		var sum int64
		for _, v := range st.Volume {
			sum += v
		}
		if st.Calls != want || sum != want || len(st.Volume) == 0 || st.Volume[len(st.Volume)-1] == 0 || (q.Bucket == 0 && len(st.Volume) != 1) {
			t.Errorf("since -%v bucket %v: %d calls, volume %v, want %d calls, the newest in the last bucket",
				now.Sub(q.Since), q.Bucket, st.Calls, st.Volume, want)
		}
	}
}

func verify(t *testing.T, s store.Store, pub ed25519.PublicKey, want int64) audit.VerifyResult {
	t.Helper()
	res, err := s.VerifyAudit(context.Background(), pub)
	if err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	if res.Records != want {
		t.Fatalf("VerifyAudit: %d records, want %d", res.Records, want)
	}
	return res
}

func testAuditChain(t *testing.T, b Backend) {
	ctx := context.Background()
	signer := NewSigner(t)
	db := b.NewDB(t)
	s := b.Open(t, db, Options{Signer: signer, CheckpointEvery: 10})
	const n = 95
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := record("bot", i)
			if err := s.Append(ctx, r); err != nil {
				t.Error(err)
				return
			}
			if r.Seq == 0 || r.Hash == "" || r.PrevHash == "" {
				t.Errorf("appended record not sealed: seq %d", r.Seq)
			}
		}()
	}
	wg.Wait()
	res := verify(t, s, signer.Public(), n)
	if res.Checkpoints < 9 {
		t.Errorf("%d checkpoints, want at least 9 (one every 10 records)", res.Checkpoints)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close signed the tail; a reopened store continues the chain.
	s2 := b.Open(t, db, Options{Signer: signer, CheckpointEvery: 10})
	defer s2.Close()
	cps, err := s2.Checkpoints(ctx)
	if err != nil || len(cps) == 0 || cps[len(cps)-1].Seq != n {
		t.Fatalf("checkpoints after close: %+v %v, want the last at %d", cps, err, n)
	}
	r := record("bot", n)
	if err := s2.Append(ctx, r); err != nil || r.Seq != n+1 {
		t.Fatalf("append after reopen: seq %d %v", r.Seq, err)
	}
	verify(t, s2, signer.Public(), n+1)
	// The wrong key fails verification.
	if _, err := s2.VerifyAudit(ctx, NewSigner(t).Public()); err == nil {
		t.Error("verification with another key passed")
	}
}

func testAuditRecords(t *testing.T, b Backend) {
	ctx := context.Background()
	s := open(t, b, Options{})
	for i := range 10 {
		agent := "alpha"
		if i%2 == 1 {
			agent = "beta"
		}
		r := record(agent, i)
		if i == 9 {
			r.Decision = "DENY"
		}
		if err := s.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(f store.AuditFilter) []int64 {
		t.Helper()
		recs, err := s.AuditRecords(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, r := range recs {
			out = append(out, r.Seq)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    store.AuditFilter
		want []int64
	}{
		{"all", store.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"agent", store.AuditFilter{Agent: "beta"}, []int64{2, 4, 6, 8, 10}},
		{"decision", store.AuditFilter{Decision: "DENY"}, []int64{10}},
		{"call", store.AuditFilter{CallID: "call-alpha-4"}, []int64{5}},
		{"since until", store.AuditFilter{Since: t0.Add(2 * time.Minute), Until: t0.Add(5 * time.Minute)}, []int64{3, 4, 5}},
		{"after limit", store.AuditFilter{AfterSeq: 7, Limit: 2}, []int64{8, 9}},
		{"desc before", store.AuditFilter{BeforeSeq: 5, Desc: true, Limit: 3}, []int64{4, 3, 2}},
		{"tenant", store.AuditFilter{Tenant: "nobody"}, nil},
	} {
		if got := seqs(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := s.AuditRecords(ctx, store.AuditFilter{Limit: -1}); err == nil {
		t.Error("negative limit accepted")
	}
	recs, _ := s.AuditRecords(ctx, store.AuditFilter{CallID: "call-beta-3"})
	if len(recs) != 1 || string(recs[0].Args) == "" || recs[0].Connector != "github" || !recs[0].Time.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("record round trip: %+v", recs)
	}
	stop := errors.New("stop")
	var seen int
	if err := s.AuditAll(ctx, func(*audit.Record) error { seen++; return stop }); !errors.Is(err, stop) || seen != 1 {
		t.Errorf("AuditAll stop: %v after %d", err, seen)
	}
}

// testAuditSeveralStores: three stores (replicas) append to one database
// at once; the trail is one chain that verifies, with every record once.
func testAuditSeveralStores(t *testing.T, b Backend) {
	ctx := context.Background()
	signer := NewSigner(t)
	db := b.NewDB(t)
	var stores []store.Store
	for range 3 {
		s := b.Open(t, db, Options{Signer: signer, CheckpointEvery: 25})
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	const per = 60
	var wg sync.WaitGroup
	for i, s := range stores {
		for j := range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Append(ctx, record(fmt.Sprintf("r%d", i), j)); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	verify(t, stores[2], signer.Public(), 3*per)
	seen := map[string]bool{}
	if err := stores[0].AuditAll(ctx, func(r *audit.Record) error {
		if seen[r.CallID] {
			return fmt.Errorf("record of %s twice", r.CallID)
		}
		seen[r.CallID] = true
		return nil
	}); err != nil || len(seen) != 3*per {
		t.Fatalf("%d distinct records, %v", len(seen), err)
	}
}

func testClosed(t *testing.T, b Backend) {
	s := b.Open(t, b.NewDB(t), Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Append(context.Background(), record("bot", 1)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
}

// testBadRecordFailsAlone: a record that cannot be encoded fails alone;
// the others of its batch are written.
func testBadRecordFailsAlone(t *testing.T, b Backend) {
	s := open(t, b, Options{})
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := record("a", i)
			if i%8 == 0 {
				r.CostUSD = math.NaN()
			}
			errs[i] = s.Append(context.Background(), r)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if bad := i%8 == 0; bad != (err != nil) {
			t.Errorf("Append %d: err = %v (bad record: %v)", i, err, bad)
		}
	}
	verify(t, s, nil, n-n/8)
}

// testAppendCancelled: an Append whose context ends reports either success
// (the record is in the trail) or the context's error (it is not).
func testAppendCancelled(t *testing.T, b Backend) {
	s := open(t, b, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	const n = 100
	recs := make([]*audit.Record, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		recs[i] = record("a", i)
		wg.Go(func() { errs[i] = s.Append(ctx, recs[i]) })
	}
	wg.Wait()
	written := 0
	for i, err := range errs {
		switch {
		case err == nil:
			written++
			if recs[i].Seq == 0 {
				t.Errorf("Append %d succeeded without a seq", i)
			}
		case errors.Is(err, context.Canceled):
			if recs[i].Seq != 0 {
				t.Errorf("Append %d was cancelled but has seq %d", i, recs[i].Seq)
			}
		default:
			t.Errorf("Append %d: %v", i, err)
		}
	}
	verify(t, s, nil, int64(written))
	if got := s.QueueDepth(); got != 0 {
		t.Errorf("QueueDepth() = %d, want 0", got)
	}
}

// testCloseWhileAppending: every Append racing Close either is durable or
// fails with ErrClosed; none hangs, none is lost.
func testCloseWhileAppending(t *testing.T, b Backend) {
	db := b.NewDB(t)
	s := b.Open(t, db, Options{})
	const writers = 16
	oks := make([]int, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := 0; ; i++ {
				err := s.Append(context.Background(), record("a", i))
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				oks[w]++
			}
		})
	}
	close(start)
	for s.QueueDepth() == 0 {
		runtime.Gosched()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	total := 0
	for _, n := range oks {
		total += n
	}
	s2 := b.Open(t, db, Options{})
	defer s2.Close()
	verify(t, s2, nil, int64(total))
}

// testAwkwardJSON: valid JSON that PostgreSQL's jsonb refuses — a \u0000
// escape (a NUL in a connector's output) and a lone surrogate — in a
// call's result and error, in an approval call, and in audit records:
// commits succeed, read back byte for byte, and Stats counts the records.
func testAwkwardJSON(t *testing.T, b Backend) {
	ctx := context.Background()
	s := open(t, b, Options{})
	now := time.Now().UTC()
	for i, result := range []string{`{"stdout":"a\u0000b"}`, `{"stdout":"a\ud800b"}`} {
		st := newCall(fmt.Sprintf("call_awk%d", i), dispatch.StatusRunning, now)
		if err := s.Commit(ctx, &audit.Record{Kind: audit.KindDecision, CallID: st.ID}, st); err != nil {
			t.Fatal(err)
		}
		st.PrevStatus, st.Status = dispatch.StatusRunning, dispatch.StatusSucceeded
		st.Result = json.RawMessage(result)
		st.Error = "x\x00y\u0000z"
		if err := s.Commit(ctx, &audit.Record{Kind: audit.KindOutcome, CallID: st.ID, Outcome: "succeeded"}, st); err != nil {
			t.Fatalf("outcome with %s: %v", result, err)
		}
		got, err := s.CallState(ctx, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Result) != result || got.Error != st.Error || got.Status != dispatch.StatusSucceeded {
			t.Errorf("read back result %s error %q status %s, want %s %q succeeded", got.Result, got.Error, got.Status, result, st.Error)
		}
		// A new call that carries one from the start.
		st2 := newCall(fmt.Sprintf("call_awk_new%d", i), dispatch.StatusFailed, now)
		st2.Error = "x\x00y"
		st2.Result = json.RawMessage(result)
		if err := s.Commit(ctx, &audit.Record{Kind: audit.KindDecision, CallID: st2.ID}, st2); err != nil {
			t.Fatalf("new call with %s: %v", result, err)
		}
		if got, err := s.CallState(ctx, st2.ID); err != nil || got.Error != st2.Error || string(got.Result) != result {
			t.Errorf("new call read back: %+v %v", got, err)
		}
	}
	// An approval call whose result holds a NUL: still found by its approval.
	ap := newCall("call_awk_apr", dispatch.StatusPending, now)
	ap.Approval = &approval.Request{ID: "apr_awk"}
	if err := s.Commit(ctx, &audit.Record{Kind: audit.KindDecision, CallID: ap.ID}, ap); err != nil {
		t.Fatal(err)
	}
	ap.PrevStatus, ap.Status = dispatch.StatusPending, dispatch.StatusSucceeded
	ap.Result = json.RawMessage(`{"out":"\u0000"}`)
	if err := s.Commit(ctx, &audit.Record{Kind: audit.KindOutcome, CallID: ap.ID}, ap); err != nil {
		t.Fatalf("approval call outcome: %v", err)
	}
	if got, err := s.CallByApproval(ctx, "apr_awk"); err != nil || got.ID != ap.ID || string(got.Result) != `{"out":"\u0000"}` {
		t.Errorf("call by approval: %+v %v", got, err)
	}

	// Audit records with them, in the Stats window.
	for _, args := range []string{`{"q":"a\u0000b"}`, `{"q":"a\udc00b"}`} {
		if err := s.Append(ctx, &audit.Record{Kind: audit.KindDecision, Tenant: "awk", Agent: "a", Decision: string(call.Allow), Args: json.RawMessage(args)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Append(ctx, &audit.Record{Kind: audit.KindOutcome, Tenant: "awk", Agent: "a", Connector: "pay", Outcome: "succeeded",
		Error: "x\x00y", CostUSD: 0.5, Tokens: 7}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx, store.StatsQuery{Tenant: "awk", Since: time.Now().Add(-time.Hour), Bucket: time.Minute}, time.Now().Add(time.Second))
	if err != nil {
		t.Fatalf("stats over records jsonb refuses: %v", err)
	}
	if st.Calls != 2 || st.Decisions["ALLOW"] != 2 || st.Connectors["pay"].Succeeded != 1 || st.Usage["awk/a"].Tokens != 7 || st.Usage["awk/a"].CostUSD != 0.5 {
		t.Errorf("stats: %d calls %v, pay %+v, usage %+v; want 2 ALLOW, 1 succeeded, 7 tokens $0.5", st.Calls, st.Decisions, st.Connectors["pay"], st.Usage["awk/a"])
	}
	recs, err := s.AuditRecords(ctx, store.AuditFilter{Tenant: "awk"})
	if err != nil || len(recs) != 3 || string(recs[0].Args) != `{"q":"a\u0000b"}` {
		t.Errorf("records read back: %d %v", len(recs), err)
	}
}
