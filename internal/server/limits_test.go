package server_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/limit"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// TestRateLimit: agent limited has calls_per_minute 3 and
// rate_limits up.create 1. Through app.Run: the call over a limit is
// refused with 429, Retry-After and the DENY body, recorded as a refused
// DENY with rule rate-limit, and never reaches the upstream; a call one
// limit refuses takes no token from another.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	w := start(t)
	tok := w.agent(t, "limited")
	create := func(n int) response {
		return w.post(t, "/v1/calls", tok, map[string]any{"connector": "up", "action": "create", "args": map[string]any{"size": n}})
	}
	get := func(id string) response {
		return w.post(t, "/v1/calls", tok, map[string]any{"connector": "up", "action": "get", "args": map[string]any{"id": id}})
	}
	refused := func(r response, limitName string) {
		t.Helper()
		if r.status != http.StatusTooManyRequests || str(r.body, "decision") != "DENY" || str(r.body, "status") != "refused" {
			t.Fatalf("over the limit: %d %s, want 429 DENY refused", r.status, r.raw)
		}
		if got := strs(r.body["rules"]); !slices.Equal(got, []string{dispatch.RuleRateLimit}) {
			t.Errorf("rules = %q, want [rate-limit]", got)
		}
		if reason := str(r.body, "reason"); !strings.Contains(reason, limitName) || !strings.Contains(reason, "next call allowed at") {
			t.Errorf("reason = %q, want it to name %s and when it resets", reason, limitName)
		}
		secs, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || secs < 1 || secs > 60 {
			t.Errorf("Retry-After = %q, want 1 to 60 seconds", r.header.Get("Retry-After"))
		}
		if str(r.body, "id") == "" || str(r.body, "resets_at") == "" {
			t.Errorf("body lacks id or resets_at: %s", r.raw)
		}
		recs := w.records(t, str(r.body, "id"))
		if len(recs) != 1 || recs[0].Kind != audit.KindDecision || recs[0].Decision != "DENY" ||
			recs[0].Outcome != audit.OutcomeRefused || !slices.Equal(recs[0].Rules, []string{dispatch.RuleRateLimit}) {
			t.Errorf("audit of the refused call: %d records %+v, want one refused DENY decision by rate-limit", len(recs), recs)
		}
	}

	if r := create(1); r.status != 200 {
		t.Fatalf("first create = %d %s", r.status, r.raw)
	}
	refused(create(2), "rate_limits.up.create") // the action's 1 per minute
	// The refused create took nothing from the agent's 3: two more calls go.
	for _, id := range []string{"r-1", "r-2"} {
		if r := get(id); r.status != 200 {
			t.Fatalf("get %s = %d %s, want 200 (the agent's limit is 3)", id, r.status, r.raw)
		}
	}
	refused(get("r-3"), "budgets.calls_per_minute") // the 4th call in the minute
	if d := w.post(t, "/v1/decide", tok, map[string]any{"connector": "up", "action": "get", "args": map[string]any{"id": "r-4"}}); d.status != 200 ||
		str(d.body, "decision") != "DENY" || d.header.Get("Retry-After") == "" {
		t.Errorf("decide over the limit = %d %s (Retry-After %q), want 200 DENY with Retry-After", d.status, d.raw, d.header.Get("Retry-After"))
	}

	if got := w.up.count("POST /api/items"); got != 1 {
		t.Errorf("upstream saw %d creates, want 1", got)
	}
	if got := w.up.count("GET /api/items/r-3"); got != 0 {
		t.Errorf("upstream saw the refused call %d times", got)
	}
	// Another agent has its own buckets.
	if r := w.post(t, "/v1/calls", w.agent(t, "other"), map[string]any{"connector": "up", "action": "get", "args": map[string]any{"id": "o-1"}}); r.status != 200 {
		t.Errorf("another agent's call = %d %s, want 200", r.status, r.raw)
	}
}

// TestBudget: once POST /v1/usage takes agent spender to its
// tokens_per_day, its calls are refused (403 DENY, rule budget, the reason
// names the budget, the amount used and the reset at the next UTC
// midnight), audited, and not run.
func TestBudget(t *testing.T) {
	t.Parallel()
	w := start(t)
	tok := w.agent(t, "spender")
	get := func(id string) response {
		return w.post(t, "/v1/calls", tok, map[string]any{"connector": "up", "action": "get", "args": map[string]any{"id": id}})
	}
	if r := get("b-1"); r.status != 200 {
		t.Fatalf("call within budget = %d %s", r.status, r.raw)
	}
	u := w.post(t, "/v1/usage", tok, map[string]any{"run_id": "run-1", "model": "claude-x", "input_tokens": 600, "output_tokens": 300, "cost_usd": 0.25})
	if u.status != 200 || u.body["tokens"] != float64(900) || u.body["tokens_per_day"] != float64(1000) || u.body["cost_usd"] != 0.25 {
		t.Fatalf("usage = %d %s, want 200 with 900 of 1000 tokens", u.status, u.raw)
	}
	if r := get("b-2"); r.status != 200 {
		t.Fatalf("call at 900 of 1000 tokens = %d %s, want 200", r.status, r.raw)
	}
	u = w.post(t, "/v1/usage", tok, map[string]any{"run_id": "run-1", "model": "claude-x", "output_tokens": 100})
	if u.status != 200 || u.body["tokens"] != float64(1000) {
		t.Fatalf("second usage = %d %s, want 1000 tokens", u.status, u.raw)
	}
	reset := limit.NextReset(time.Now())
	if got := str(u.body, "resets_at"); got != reset.Format(time.RFC3339) {
		t.Errorf("resets_at = %q, want %s", got, reset.Format(time.RFC3339))
	}

	r := get("b-3")
	if r.status != http.StatusForbidden || str(r.body, "decision") != "DENY" || !slices.Equal(strs(r.body["rules"]), []string{dispatch.RuleBudget}) {
		t.Fatalf("call over budget = %d %s, want 403 DENY by budget", r.status, r.raw)
	}
	reason := str(r.body, "reason")
	for _, want := range []string{"tokens_per_day", "1000 of 1000 tokens used", "resets at " + reset.Format(time.RFC3339)} {
		if !strings.Contains(reason, want) {
			t.Errorf("reason = %q, want it to contain %q", reason, want)
		}
	}
	if r.header.Get("Retry-After") != "" {
		t.Errorf("a budget refusal has Retry-After %q, want none", r.header.Get("Retry-After"))
	}
	if got := w.up.count("GET /api/items/b-3"); got != 0 {
		t.Errorf("upstream saw the refused call %d times", got)
	}
	if recs := w.records(t, str(r.body, "id")); len(recs) != 1 || recs[0].Outcome != audit.OutcomeRefused || !slices.Equal(recs[0].Rules, []string{dispatch.RuleBudget}) {
		t.Errorf("audit of the refused call = %+v, want one refused record by budget", recs)
	}

	// The usage reports are audited as kind usage.
	recs, err := w.store.AuditRecords(context.Background(), sqlite.AuditFilter{Agent: "spender"})
	if err != nil {
		t.Fatal(err)
	}
	var usage []*audit.Record
	for _, rec := range recs {
		if rec.Kind == audit.KindUsage {
			usage = append(usage, rec)
		}
	}
	if len(usage) != 2 || usage[0].Tokens != 900 || usage[0].CostUSD != 0.25 || usage[0].RunID != "run-1" ||
		!strings.Contains(string(usage[0].Args), `"model":"claude-x"`) || usage[1].Tokens != 100 {
		t.Errorf("usage records = %+v, want two (900 tokens $0.25 with the model, then 100)", usage)
	}
}

// TestUsageValidation: POST /v1/usage is strict like every endpoint.
func TestUsageValidation(t *testing.T) {
	t.Parallel()
	w := start(t)
	bot := w.agent(t, "bot")
	admin, _ := w.token(t, call.Principal{Role: call.RoleAdmin, Name: "ops"})
	approver, _ := w.token(t, call.Principal{Role: call.RoleApprover, Name: "alice"})
	cases := []struct {
		name, token, ctype, body string
		wantHTTP                 int
		wantCode                 string
	}{
		{"ok", bot, "application/json", `{"run_id":"r","model":"m","input_tokens":10,"output_tokens":5,"cost_usd":0.01}`, 200, ""},
		{"negative input", bot, "application/json", `{"input_tokens":-1}`, 400, "invalid_field"},
		{"negative output", bot, "application/json", `{"output_tokens":-5,"input_tokens":10}`, 400, "invalid_field"},
		{"negative cost", bot, "application/json", `{"input_tokens":1,"cost_usd":-0.5}`, 400, "invalid_field"},
		{"nothing used", bot, "application/json", `{"run_id":"r"}`, 400, "invalid_field"},
		{"unknown field", bot, "application/json", `{"input_tokens":1,"tokens":5}`, 400, "invalid_json"},
		{"string tokens", bot, "application/json", `{"input_tokens":"10"}`, 400, "invalid_json"},
		{"fractional tokens", bot, "application/json", `{"input_tokens":1.5}`, 400, "invalid_json"},
		{"trailing data", bot, "application/json", `{"input_tokens":1} {}`, 400, "invalid_json"},
		{"long model", bot, "application/json", `{"input_tokens":1,"model":"` + strings.Repeat("m", 201) + `"}`, 400, "invalid_field"},
		{"not JSON", bot, "text/plain", `{"input_tokens":1}`, 415, "unsupported_media_type"},
		{"admin token", admin, "application/json", `{"input_tokens":1}`, 403, "forbidden"},
		{"approver token", approver, "application/json", `{"input_tokens":1}`, 403, "forbidden"},
		{"no token", "", "application/json", `{"input_tokens":1}`, 401, "unauthenticated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := w.do(t, http.MethodPost, "/v1/usage", c.token, c.ctype, c.body)
			if r.status != c.wantHTTP {
				t.Fatalf("status = %d %s, want %d", r.status, r.raw, c.wantHTTP)
			}
			if c.wantCode != "" {
				if code, _ := apiError(t, r); code != c.wantCode {
					t.Errorf("code = %q, want %q", code, c.wantCode)
				}
			}
		})
	}
	// Only the valid report counts.
	u, err := w.store.Usage(context.Background(), call.DefaultTenant, "bot", limit.Day(time.Now()))
	if err != nil || u.Tokens != 15 || u.CostUSD != 0.01 {
		t.Errorf("bot's usage today = %+v, %v; want 15 tokens, $0.01", u, err)
	}
}
