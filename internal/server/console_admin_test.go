package server

// Unit tests of the console's admin pages: who may see and do what, CSRF
// on every action, and what the dashboard and agents pages show, with a
// fake Operations. The browser test is internal/app/console_test.go.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/policy"
)

type fakeOps struct {
	mu        sync.Mutex
	kills     []KillSwitch
	requests  []KillRequest
	rollbacks []string
	act       *Activation
	stats     map[time.Duration]*Stats // by bucket width
	err       error
}

func (f *fakeOps) Stats(_ context.Context, q StatsQuery) (*Stats, error) {
	if f.err != nil {
		return nil, f.err
	}
	if st := f.stats[q.Bucket]; st != nil {
		return st, nil
	}
	return &Stats{Volume: make([]int64, int(q.Now.Sub(q.Since)/q.Bucket))}, nil
}

func (f *fakeOps) KillSwitches(context.Context) ([]KillSwitch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]KillSwitch(nil), f.kills...), f.err
}

func (f *fakeOps) LiveActivation(context.Context) (*Activation, error) { return f.act, f.err }

func (f *fakeOps) SwitchKill(_ context.Context, k KillRequest) (bool, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, k)
	if k.Revive {
		return true, "revived " + k.Tenant + "/" + k.Agent + " by " + k.By, nil
	}
	f.kills = append(f.kills, KillSwitch{Tenant: k.Tenant, Agent: k.Agent, By: k.By, Why: k.Reason, At: time.Now()})
	return true, "killed " + k.Tenant + "/" + k.Agent + " by " + k.By, nil
}

func (f *fakeOps) Rollback(_ context.Context, by string) (bool, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rollbacks = append(f.rollbacks, by)
	return true, "config rolled back from aaaaaaaaaaaa to bbbbbbbbbbbb by " + by, nil
}

func (f *fakeOps) actions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests) + len(f.rollbacks)
}

const adminTestConfig = `
kind: agent
name: bot
owner: ops@example.com
description: pays refunds
permissions:
  pay: {refund: ask}
---
kind: agent
name: bot
tenant: other
owner: other@example.com
permissions:
  pay: {refund: ask}
---
kind: connector
name: pay
type: http
base_url: http://127.0.0.1:1
actions:
  refund: {type: external, method: POST, path: "/refunds"}
`

// newAdminEnv is newConsoleEnv with a config and a fake Operations.
func newAdminEnv(t *testing.T) (*consoleEnv, *fakeOps) {
	e := newConsoleEnv(t)
	cfg, err := config.Parse([]config.File{{Name: "c.yaml", Data: []byte(adminTestConfig)}})
	if err != nil {
		t.Fatal(err)
	}
	e.auth.tokens["wdn_tenant_admin"] = e.auth.tokens["wdn_admin"]
	ta := e.auth.tokens["wdn_tenant_admin"]
	ta.Tenant, ta.Name, ta.TokenID = "other", "olga", "t5"
	e.auth.tokens["wdn_tenant_admin"] = ta
	ops := &fakeOps{act: &Activation{Version: cfg.Version, Kind: "apply", By: "alice", At: e.now.Add(-time.Hour)}}
	clock := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	d := dispatch.New(dispatch.Options{Approvals: e.apr, Now: clock}, &dispatch.Snapshot{Engine: policy.New(cfg)})
	e.h = New(Options{Dispatcher: d, Auth: e.auth, Now: clock, Operations: ops}).Handler()
	return e, ops
}

// signInAs signs in and returns the session and the CSRF token of the
// page signing in lands on (the inbox, or the dashboard for admins).
func (e *consoleEnv) signInAs(token string) (*http.Cookie, string) {
	e.t.Helper()
	page := e.do("GET", "/console/signin", nil)
	rec := e.do("POST", "/console/signin", url.Values{"csrf": {csrfOf(e.t, page.Body.String())}, "token": {token}}, cookie(page, signinCookie))
	sess := cookie(rec, sessionCookie)
	if rec.Code != http.StatusSeeOther || sess == nil {
		e.t.Fatalf("sign in with %s: got %d, want 303 with a session:\n%s", token, rec.Code, rec.Body)
	}
	home := e.do("GET", "/", nil, sess)
	if home.Code == http.StatusSeeOther {
		home = e.do("GET", home.Header().Get("Location"), nil, sess)
	}
	if home.Code != http.StatusOK {
		e.t.Fatalf("home page after sign-in: got %d:\n%s", home.Code, home.Body)
	}
	return sess, csrfOf(e.t, home.Body.String())
}

func TestConsoleAdminRoles(t *testing.T) {
	e, ops := newAdminEnv(t)
	admin, adminCSRF := e.signInAs("wdn_admin")
	approver, approverCSRF := e.signInAs("wdn_alice")

	// An admin's home is the dashboard; the nav shows only admin pages.
	rec := e.do("GET", "/", nil, admin)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/console/dashboard" {
		t.Fatalf("admin GET /: got %d %q, want 303 to the dashboard", rec.Code, rec.Header().Get("Location"))
	}
	for _, p := range []string{"/console/dashboard", "/console/agents"} {
		rec := e.do("GET", p, nil, admin)
		checkConsoleHeaders(t, rec)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, `id="nav-agents"`) || strings.Contains(body, `href="/console/history"`) {
			t.Errorf("admin GET %s: got %d, want 200 with the admin nav only:\n%s", p, rec.Code, body)
		}
	}
	// Admins cannot read approvals (as in the API).
	if rec := e.do("GET", "/console/history", nil, admin); rec.Code != http.StatusForbidden {
		t.Errorf("admin GET history: got %d, want 403", rec.Code)
	}

	// An approver sees none of it: no nav entry, 403 on the pages.
	inbox := e.do("GET", "/", nil, approver).Body.String()
	for _, s := range []string{"/console/dashboard", "/console/agents", "rollback", "Kill"} {
		if strings.Contains(inbox, s) {
			t.Errorf("the approver's inbox mentions %q", s)
		}
	}
	for _, p := range []string{"/console/dashboard", "/console/agents"} {
		rec := e.do("GET", p, nil, approver)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "Only admin tokens") {
			t.Errorf("approver GET %s: got %d, want 403", p, rec.Code)
		}
		checkConsoleHeaders(t, rec)
	}

	kill := url.Values{"tenant": {"default"}, "agent": {"bot"}, "reason": {"loop"}}
	with := func(v url.Values, csrf string) url.Values {
		out := url.Values{"csrf": {csrf}}
		for k, vs := range v {
			out[k] = vs
		}
		return out
	}
	// An approver with a valid session and CSRF token still cannot act.
	for _, path := range []string{"/console/agents/kill", "/console/agents/revive", "/console/config/rollback"} {
		rec := e.do("POST", path, with(kill, approverCSRF), approver)
		if rec.Code != http.StatusForbidden {
			t.Errorf("approver POST %s: got %d, want 403", path, rec.Code)
		}
		checkConsoleHeaders(t, rec)
	}
	// No session: sign in first.
	if rec := e.do("POST", "/console/agents/kill", with(kill, adminCSRF)); rec.Code != http.StatusSeeOther {
		t.Errorf("kill without a session: got %d, want 303 to sign in", rec.Code)
	}
	if n := ops.actions(); n != 0 {
		t.Fatalf("%d actions reached Operations, want none", n)
	}

	// The admin can, and the result shows on the agents page.
	rec = e.do("POST", "/console/agents/kill", with(kill, adminCSRF), admin)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/console/agents" {
		t.Fatalf("admin kill: got %d %q, want 303 to the agents page:\n%s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	want := KillRequest{Tenant: "default", Agent: "bot", By: "admin:root", Reason: "loop"}
	if len(ops.requests) != 1 || ops.requests[0] != want {
		t.Fatalf("kill request: got %+v, want %+v", ops.requests, want)
	}
	page := e.do("GET", "/console/agents", nil, admin).Body.String()
	for _, s := range []string{"killed default/bot by admin:root", "killed</span> by admin:root", "“loop”", `id="revive-default-bot"`, `id="kill-other-bot"`} {
		if !strings.Contains(page, s) {
			t.Errorf("agents page after the kill lacks %q:\n%s", s, page)
		}
	}
	rec = e.do("POST", "/console/agents/revive", with(url.Values{"tenant": {"default"}, "agent": {"bot"}}, adminCSRF), admin)
	if rec.Code != http.StatusSeeOther || len(ops.requests) != 2 || !ops.requests[1].Revive {
		t.Fatalf("admin revive: got %d %+v", rec.Code, ops.requests)
	}
	rec = e.do("POST", "/console/config/rollback", url.Values{"csrf": {adminCSRF}}, admin)
	if rec.Code != http.StatusSeeOther || len(ops.rollbacks) != 1 || ops.rollbacks[0] != "admin:root" {
		t.Fatalf("admin rollback: got %d %v", rec.Code, ops.rollbacks)
	}
	if page := e.do("GET", "/console/agents", nil, admin).Body.String(); !strings.Contains(page, "config rolled back from aaaaaaaaaaaa to bbbbbbbbbbbb by admin:root") {
		t.Errorf("agents page after the rollback does not show its result:\n%s", page)
	}

	// Bad forms: whole tenants are the CLI's; names are required.
	for name, form := range map[string]url.Values{
		"no agent":     {"tenant": {"default"}},
		"whole tenant": {"tenant": {"default"}, "agent": {"*"}},
		"everything":   {"tenant": {"*"}, "agent": {"*"}},
	} {
		if rec := e.do("POST", "/console/agents/kill", with(form, adminCSRF), admin); rec.Code != http.StatusBadRequest {
			t.Errorf("kill, %s: got %d, want 400", name, rec.Code)
		}
	}
}

func TestConsoleAdminCSRF(t *testing.T) {
	e, ops := newAdminEnv(t)
	admin, csrf := e.signInAs("wdn_admin")
	_, other := e.signInAs("wdn_admin")
	for _, path := range []string{"/console/agents/kill", "/console/agents/revive", "/console/config/rollback"} {
		for name, form := range map[string]url.Values{
			"missing":       {"tenant": {"default"}, "agent": {"bot"}},
			"empty":         {"csrf": {""}, "tenant": {"default"}, "agent": {"bot"}},
			"forged":        {"csrf": {strings.Repeat("A", len(csrf))}, "tenant": {"default"}, "agent": {"bot"}},
			"other session": {"csrf": {other}, "tenant": {"default"}, "agent": {"bot"}},
		} {
			rec := e.do("POST", path, form, admin)
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "did not come from this console") {
				t.Errorf("POST %s, %s CSRF token: got %d, want 403", path, name, rec.Code)
			}
		}
	}
	if n := ops.actions(); n != 0 {
		t.Fatalf("%d actions without a valid CSRF token reached Operations", n)
	}
}

func TestConsoleAdminTenant(t *testing.T) {
	e, ops := newAdminEnv(t)
	sess, csrf := e.signInAs("wdn_tenant_admin")
	page := e.do("GET", "/console/agents", nil, sess).Body.String()
	if !strings.Contains(page, `id="agent-other-bot"`) || strings.Contains(page, `id="agent-default-bot"`) {
		t.Errorf("a tenant admin's agents page: want only tenant other's agents:\n%s", page)
	}
	if strings.Contains(page, `id="rollback"`) {
		t.Error("a tenant admin is offered the config rollback")
	}
	for path, form := range map[string]url.Values{
		"/console/agents/kill":     {"csrf": {csrf}, "tenant": {"default"}, "agent": {"bot"}},
		"/console/config/rollback": {"csrf": {csrf}},
	} {
		if rec := e.do("POST", path, form, sess); rec.Code != http.StatusForbidden {
			t.Errorf("tenant admin POST %s: got %d, want 403", path, rec.Code)
		}
	}
	if rec := e.do("POST", "/console/agents/kill", url.Values{"csrf": {csrf}, "tenant": {"other"}, "agent": {"bot"}}, sess); rec.Code != http.StatusSeeOther {
		t.Errorf("tenant admin kills an agent of its tenant: got %d, want 303", rec.Code)
	}
	if len(ops.requests) != 1 || ops.requests[0].Tenant != "other" || ops.requests[0].By != "admin:olga" {
		t.Errorf("requests: %+v", ops.requests)
	}
}

func TestConsoleDashboard(t *testing.T) {
	e, ops := newAdminEnv(t)
	ops.stats = map[time.Duration]*Stats{5 * time.Minute: {
		Calls:           7,
		Volume:          []int64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 5},
		Decisions:       map[string]int64{"ALLOW": 4, "DENY": 2, "REQUIRE_APPROVAL": 1},
		Connectors:      map[string]ConnectorOutcomes{"pay": {Succeeded: 3, Failed: 1}},
		ApprovalLatency: []time.Duration{5 * time.Second, 2 * time.Minute, 3 * time.Minute},
		Expired:         1,
		Usage:           map[string]AgentUsage{"default/bot": {CostUSD: 1.25, Tokens: 4000}},
	}}
	sess, _ := e.signInAs("wdn_admin")
	rec := e.do("GET", "/console/dashboard", nil, sess)
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("dashboard: got %d:\n%s", rec.Code, body)
	}
	for _, want := range []string{
		`id="calls-hour">7<`, `id="calls-day">0<`, `id="error-rate-hour">25%<`,
		`<svg viewBox="0 0 460`, "ALLOW: 4 (57%)", "DENY: 2 (29%)", "pay: 25% (1 of 4)",
		"3 votes · median 2m · p90 3m · max 3m · 1 expired", "default/bot: $1.25 · 4000 tokens",
		"No calls.", "No approval votes.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if strings.Contains(body, "style=") {
		t.Error("dashboard uses inline styles, which the CSP refuses")
	}

	ops.err = errors.New("sqlite: disk I/O error at /var/lib/warden/warden.db")
	rec = e.do("GET", "/console/dashboard", nil, sess)
	if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "sqlite") {
		t.Errorf("store failure: got %d, want 503 without internals:\n%s", rec.Code, rec.Body)
	}
}
