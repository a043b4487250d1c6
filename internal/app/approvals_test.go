package app_test

// Approvals end to end: warden runs in-process through app.Run on
// 127.0.0.1 with a real SQLite file; approvers act through the HTTP API and
// through the CLI (cli.Run in-process, with its own connection pool on the
// same file, as a second process would have).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/warden-dev/warden/internal/store/sqlite"
)

const aprConfig = `
kind: agent
name: bot
owner: test@example.com
permissions:
  pay: {refund: ask, payout: on}
---
kind: agent
name: bot
tenant: other
owner: test@example.com
permissions:
  pay: {refund: ask}
---
kind: connector
name: pay
type: http
base_url: %s
actions:
  refund: {type: external, method: POST, path: "/refunds/{args.order}", body: "{args}"}
  payout: {type: external, method: POST, path: "/payouts/{args.order}", body: "{args}"}
---
kind: policy
name: money
rules:
  - name: big-payouts
    match: {connector: pay, action: payout}
    when: 'args.amount > 100'
    decision: REQUIRE_APPROVAL
    approval: {timeout: 1h, approvers: [alice, bob, "ops-*"], min_approvals: 2}
`

// aprUpstream counts the requests that reach it, per path.
type aprUpstream struct {
	mu   sync.Mutex
	hits map[string]int
}

func (u *aprUpstream) count(p string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[p]
}

type aprEnv struct {
	t      *testing.T
	cfg    string
	db     string
	url    string
	up     *aprUpstream
	stop   func()
	agent  string // default tenant agent token
	tokens map[string]string
}

func aprSetup(t *testing.T, approvalTimeout time.Duration) *aprEnv {
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
	cfg := filepath.Join(dir, "warden.d")
	if err := os.Mkdir(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "c.yaml"), []byte(fmt.Sprintf(aprConfig, us.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &aprEnv{t: t, cfg: cfg, db: filepath.Join(dir, "warden.db"), up: up, tokens: map[string]string{}}
	e.start(approvalTimeout)
	st, err := sqlite.Open(context.Background(), e.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mk := func(p call.Principal, scope approval.Scope) string {
		var tok string
		var err error
		if p.Role == call.RoleApprover {
			tok, _, err = st.CreateApproverToken(context.Background(), p, scope)
		} else {
			tok, _, err = st.CreateToken(context.Background(), p)
		}
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	e.agent = mk(call.Principal{Role: call.RoleAgent, Tenant: "default", Agent: "bot"}, approval.Scope{})
	e.tokens["other-agent"] = mk(call.Principal{Role: call.RoleAgent, Tenant: "other", Agent: "bot"}, approval.Scope{})
	for _, n := range []string{"alice", "bob", "carol", "ops-dan"} {
		e.tokens[n] = mk(call.Principal{Role: call.RoleApprover, Tenant: "default", Name: n}, approval.Scope{})
	}
	e.tokens["other-tenant"] = mk(call.Principal{Role: call.RoleApprover, Tenant: "other", Name: "olga"}, approval.Scope{})
	e.tokens["notes-only"] = mk(call.Principal{Role: call.RoleApprover, Name: "nora"}, approval.Scope{Connectors: []string{"notes"}})
	e.tokens["admin"] = mk(call.Principal{Role: call.RoleAdmin, Name: "root"}, approval.Scope{})
	return e
}

func (e *aprEnv) start(approvalTimeout time.Duration) {
	e.t.Helper()
	srv := apptest.Start(e.t, app.Options{ConfigDir: e.cfg, DB: e.db, ApprovalTimeout: approvalTimeout, Grace: 5 * time.Second})
	e.url = srv.URL
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			if err := srv.Stop(); err != nil {
				e.t.Errorf("app.Run: %v", err)
			}
		})
	}
}

// do sends a JSON request and decodes the JSON answer into a map.
func (e *aprEnv) do(method, path, token string, body any) (int, map[string]any) {
	e.t.Helper()
	return mustDo(e.t, e.url, method, path, token, body)
}

// do sends a JSON request to warden at base and decodes the JSON answer;
// no token, no Authorization header. A transport error is status 0.
func do(t *testing.T, base, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// mustDo is do for a server that must answer: a transport error fails the
// test.
func mustDo(t *testing.T, base, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	code, m := do(t, base, method, path, token, body)
	if code == 0 {
		t.Fatalf("%s %s: no answer from %s", method, path, base)
	}
	return code, m
}

// pending makes a call that needs approval and returns its call and
// approval ids.
func (e *aprEnv) pending(token, action, order string, extra map[string]any) (callID, approvalID string) {
	e.t.Helper()
	args := map[string]any{"order": order, "amount": 500}
	body := map[string]any{"connector": "pay", "action": action, "args": args}
	for k, v := range extra {
		body[k] = v
	}
	code, m := e.do("POST", "/v1/calls", token, body)
	if code != http.StatusAccepted || m["status"] != "pending" || m["approval_id"] == nil {
		e.t.Fatalf("call: got %d %v, want 202 pending with approval_id", code, m)
	}
	return m["id"].(string), m["approval_id"].(string)
}

func (e *aprEnv) cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), append(args, "--db", e.db), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// waitDone long-polls the call as the agent until it is no longer in progress.
func (e *aprEnv) waitDone(token, callID string) map[string]any {
	e.t.Helper()
	code, m := e.do("GET", "/v1/calls/"+callID+"?wait=10s", token, nil)
	if code != http.StatusOK {
		e.t.Fatalf("GET call: %d %v", code, m)
	}
	return m
}

func (e *aprEnv) records(callID string) []*audit.Record {
	e.t.Helper()
	st, err := sqlite.Open(context.Background(), e.db, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.AuditRecords(context.Background(), sqlite.AuditFilter{CallID: callID})
	if err != nil {
		e.t.Fatal(err)
	}
	return recs
}

func kinds(recs []*audit.Record) string {
	var k []string
	for _, r := range recs {
		k = append(k, r.Kind)
	}
	return strings.Join(k, ",")
}

// Two approvers race through two channels (API and CLI), then the API
// request is retried: the upstream sees the refund exactly once.
func TestApprovalExactlyOnceRacingChannels(t *testing.T) {
	e := aprSetup(t, 0)
	for i := range 5 {
		order := fmt.Sprintf("race-%d", i)
		callID, aprID := e.pending(e.agent, "refund", order, nil)

		var wg sync.WaitGroup
		var apiCode, cliCode atomic.Int64
		wg.Add(2)
		go func() {
			defer wg.Done()
			code, _ := e.do("POST", "/v1/approvals/"+aprID+"/approve", e.tokens["alice"], map[string]any{"comment": "ok from api"})
			apiCode.Store(int64(code))
		}()
		go func() {
			defer wg.Done()
			code, _, _ := e.cli("approvals", "approve", aprID, "--token", e.tokens["bob"], "--comment", "ok from cli", "--wait", "0")
			cliCode.Store(int64(code))
		}()
		wg.Wait()
		if apiCode.Load() != 200 && cliCode.Load() != 0 {
			t.Fatalf("neither approval succeeded: api %d, cli exit %d", apiCode.Load(), cliCode.Load())
		}
		m := e.waitDone(e.agent, callID)
		if m["status"] != "succeeded" {
			t.Fatalf("call after approval: %v", m)
		}
		// A retried approve (same approver, same vote) answers with the
		// state and records nothing new.
		code, r := e.do("POST", "/v1/approvals/"+aprID+"/approve", e.tokens["alice"], map[string]any{"comment": "ok from api"})
		if code != http.StatusOK && code != http.StatusConflict {
			t.Fatalf("retried approve: got %d %v", code, r)
		}
		if got := e.up.count("/refunds/" + order); got != 1 {
			t.Fatalf("upstream saw the refund %d times, want exactly 1", got)
		}
		recs := e.records(callID)
		if got, want := kinds(recs), "decision,approval,started,outcome"; got != want {
			t.Fatalf("records: got %s, want %s", got, want)
		}
		a := recs[1].Approval
		if a == nil || a.ID != aprID || a.DecidedAt.IsZero() {
			t.Fatalf("approval record: %+v", a)
		}
		switch {
		case a.Approver == "approver:alice" && a.Channel == "api" && a.Comment == "ok from api":
		case a.Approver == "approver:bob" && a.Channel == "cli" && a.Comment == "ok from cli":
		default:
			t.Fatalf("approval record: got %+v, want alice/api or bob/cli with the comment", a)
		}
		if out := recs[3]; out.Approval == nil || out.Approval.Approver != a.Approver || out.Outcome != "succeeded" {
			t.Fatalf("outcome record should name the approver: %+v", out)
		}
	}
}

// The CLI approves while the server is down; the call runs once when the
// server comes back, and never again on later restarts.
func TestApprovalSurvivesRestart(t *testing.T) {
	e := aprSetup(t, 0)
	callID, aprID := e.pending(e.agent, "refund", "restart", nil)
	e.stop()
	code, out, errOut := e.cli("approvals", "approve", aprID, "--token", e.tokens["carol"], "--wait", "0")
	if code != 0 || !strings.Contains(out, "approved") {
		t.Fatalf("cli approve: exit %d\n%s%s", code, out, errOut)
	}
	if got := e.up.count("/refunds/restart"); got != 0 {
		t.Fatalf("ran before any server was up: %d", got)
	}
	e.start(0)
	if m := e.waitDone(e.agent, callID); m["status"] != "succeeded" {
		t.Fatalf("after restart: %v", m)
	}
	e.stop()
	e.start(0)
	// One more sweep cycle cannot run it again: it is no longer approved.
	if m := e.waitDone(e.agent, callID); m["status"] != "succeeded" {
		t.Fatalf("after second restart: %v", m)
	}
	if got := e.up.count("/refunds/restart"); got != 1 {
		t.Fatalf("upstream saw it %d times, want 1", got)
	}
	if got, want := kinds(e.records(callID)), "decision,approval,started,outcome"; got != want {
		t.Fatalf("records: got %s, want %s", got, want)
	}
}

func TestApprovalDeniedAndExpired(t *testing.T) {
	e := aprSetup(t, 0)
	// Denied: the waiting agent gets 403 with the approver in the reason.
	callID, aprID := e.pending(e.agent, "refund", "deny", nil)
	code, m := e.do("POST", "/v1/approvals/"+aprID+"/deny", e.tokens["alice"], map[string]any{"comment": "not this customer"})
	if code != http.StatusOK || m["status"] != "denied" {
		t.Fatalf("deny: %d %v", code, m)
	}
	st := e.waitDone(e.agent, callID)
	if st["status"] != "refused" || !strings.Contains(st["reason"].(string), "denied by approver:alice via api") ||
		!strings.Contains(st["reason"].(string), "not this customer") {
		t.Fatalf("denied call: %v", st)
	}
	if code, m := e.do("POST", "/v1/approvals/"+aprID+"/approve", e.tokens["bob"], nil); code != http.StatusConflict {
		t.Fatalf("approve after deny: got %d %v, want 409", code, m)
	}
	recs := e.records(callID)
	if got, want := kinds(recs), "decision,denial"; got != want {
		t.Fatalf("records: got %s, want %s", got, want)
	}
	if a := recs[1].Approval; a == nil || a.Approver != "approver:alice" || a.Channel != "api" || a.Comment != "not this customer" || recs[1].Outcome != "refused" {
		t.Fatalf("denial record: %+v %+v", recs[1], a)
	}
	if e.up.count("/refunds/deny") != 0 {
		t.Fatal("a denied call ran")
	}

	// Expired: a short timeout; the sync waiter gets 403 with the expiry.
	e.stop()
	e.start(500 * time.Millisecond)
	code, m = e.do("POST", "/v1/calls", e.agent, map[string]any{"connector": "pay", "action": "refund",
		"args": map[string]any{"order": "late", "amount": 1}, "wait": "5s"})
	if code != http.StatusForbidden || m["status"] != "expired" || !strings.Contains(m["reason"].(string), "expired: no approval before") {
		t.Fatalf("expired: got %d %v", code, m)
	}
	if code, r := e.do("POST", "/v1/approvals/"+m["approval_id"].(string)+"/approve", e.tokens["alice"], nil); code != http.StatusConflict {
		t.Fatalf("approve after expiry: got %d %v, want 409", code, r)
	}
	if e.up.count("/refunds/late") != 0 {
		t.Fatal("an expired call ran")
	}
}

func TestApprovalWhoMayDecide(t *testing.T) {
	e := aprSetup(t, 0)
	_, aprID := e.pending(e.agent, "refund", "authz", map[string]any{"trigger": "user:carol"})
	_, otherApr := e.pending(e.tokens["other-agent"], "refund", "authz-other", nil)

	for _, tc := range []struct {
		who, path string
		want      int
	}{
		{"agent", "/v1/approvals?status=pending", 403},
		{"agent", "/v1/approvals/" + aprID + "/approve", 403},
		{"other-agent", "/v1/approvals/" + otherApr + "/approve", 403},
		{"admin", "/v1/approvals/" + aprID + "/approve", 403},
		{"other-tenant", "/v1/approvals/" + aprID + "/approve", 403}, // outside the tenant
		{"notes-only", "/v1/approvals/" + aprID + "/approve", 403},   // outside the connector scope
		{"carol", "/v1/approvals/" + aprID + "/approve", 403},        // started the run: no self-approval
		{"alice", "/v1/approvals/" + otherApr + "/approve", 403},     // other tenant's request
		{"alice", "/v1/approvals/apr_nope/approve", 404},
	} {
		tok := e.tokens[tc.who]
		if tc.who == "agent" {
			tok = e.agent
		}
		method := "POST"
		if strings.Contains(tc.path, "?") {
			method = "GET"
		}
		if code, m := e.do(method, tc.path, tok, nil); code != tc.want {
			t.Errorf("%s %s as %s: got %d %v, want %d", method, tc.path, tc.who, code, m, tc.want)
		}
	}
	// The CLI refuses the same way.
	if code, _, errOut := e.cli("approvals", "approve", aprID, "--token", e.tokens["carol"]); code == 0 || !strings.Contains(errOut, "own identity") {
		t.Errorf("cli self-approval: exit %d, %s", code, errOut)
	}
	if code, _, errOut := e.cli("approvals", "approve", aprID, "--token", e.agent); code == 0 || !strings.Contains(errOut, "agent can never approve") {
		t.Errorf("cli agent approval: exit %d, %s", code, errOut)
	}
	// The inbox shows alice the request with its context, but not carol.
	code, m := e.do("GET", "/v1/approvals?status=pending", e.tokens["alice"], nil)
	list, _ := m["approvals"].([]any)
	if code != 200 || len(list) != 1 {
		t.Fatalf("alice's inbox: %d %v", code, m)
	}
	item := list[0].(map[string]any)
	if item["id"] != aprID || item["agent"] != "bot" || item["action"] != "refund" || item["reason"] == "" ||
		item["args"].(map[string]any)["order"] != "authz" || item["expires_at"] == nil {
		t.Fatalf("inbox item lacks context: %v", item)
	}
	if _, m := e.do("GET", "/v1/approvals?status=pending", e.tokens["carol"], nil); len(m["approvals"].([]any)) != 0 {
		t.Fatalf("carol's inbox should not offer her own run: %v", m)
	}
	code, out, _ := e.cli("approvals", "list", "--json", "--token", e.tokens["alice"])
	if code != 0 || !strings.Contains(out, aprID) {
		t.Fatalf("cli list: %d %s", code, out)
	}
	code, out, _ = e.cli("approvals", "show", aprID, "--token", e.tokens["alice"])
	if code != 0 || !strings.Contains(out, "pay.refund") || !strings.Contains(out, "user:carol") {
		t.Fatalf("cli show: %d %s", code, out)
	}
	if e.up.count("/refunds/authz") != 0 {
		t.Fatal("ran without approval")
	}
}

// A rule asks two approvals from named approvers.
func TestApprovalRuleMinApprovals(t *testing.T) {
	e := aprSetup(t, 0)
	callID, aprID := e.pending(e.agent, "payout", "two", nil)
	if code, m := e.do("POST", "/v1/approvals/"+aprID+"/approve", e.tokens["carol"], nil); code != 403 ||
		!strings.Contains(m["error"].(map[string]any)["message"].(string), "not among the approvers") {
		t.Fatalf("carol is not a named approver: %d %v", code, m)
	}
	code, m := e.do("POST", "/v1/approvals/"+aprID+"/approve", e.tokens["alice"], nil)
	if code != 200 || m["status"] != "pending" || len(m["votes"].([]any)) != 1 {
		t.Fatalf("first of two: %d %v", code, m)
	}
	if e.up.count("/payouts/two") != 0 {
		t.Fatal("ran after one of two approvals")
	}
	code, m = e.do("POST", "/v1/approvals/"+aprID+"/approve", e.tokens["ops-dan"], map[string]any{"comment": "second"})
	if code != 200 || m["call_status"] != "succeeded" {
		t.Fatalf("second of two: %d %v", code, m)
	}
	if got := e.up.count("/payouts/two"); got != 1 {
		t.Fatalf("upstream saw %d payouts, want 1", got)
	}
	if got, want := kinds(e.records(callID)), "decision,approval,approval,started,outcome"; got != want {
		t.Fatalf("records: got %s, want %s", got, want)
	}
	// A small payout does not need approval at all.
	if code, m := e.do("POST", "/v1/calls", e.agent, map[string]any{"connector": "pay", "action": "payout", "args": map[string]any{"order": "small", "amount": 5}}); code != 200 {
		t.Fatalf("small payout: %d %v", code, m)
	}
}
