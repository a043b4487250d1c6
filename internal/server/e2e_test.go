package server_test

// End-to-end tests of the REST API: warden runs in-process through app.Run
// (the same composition root `warden serve` uses), listening on 127.0.0.1,
// with its SQLite store in a temp dir and an http connector pointed at an
// upstream the test controls and counts. Nothing of warden is mocked.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/app/apptest"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/client"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// config is the test config; %s is the upstream's base URL.
const config = `
kind: agent
name: bot
owner: test@example.com
permissions:
  up: {get: on, create: on, purge: on, pay: ask, drop: off}
---
kind: agent
name: other
owner: test@example.com
permissions:
  up: {get: on}
---
# limited and spender: rate limits and budgets (limits_test.go)
kind: agent
name: limited
owner: test@example.com
permissions:
  up: {get: on, create: on}
budgets: {calls_per_minute: 3}
rate_limits:
  up: {create: 1}
---
kind: agent
name: spender
owner: test@example.com
permissions:
  up: {get: on}
budgets: {tokens_per_day: 1000, usd_per_day: 2}
---
kind: connector
name: up
type: http
base_url: %s/api
timeout: 10s
actions:
  get:
    type: read
    method: GET
    path: /items/{args.id}
    input_schema:
      type: object
      properties:
        id: {type: string}
      required: [id]
  create: {type: write, method: POST, path: /items, body: "{args}"}
  purge:  {type: delete, method: DELETE, path: /items}
  pay:    {type: external, method: POST, path: /pay, body: "{args}"}
  drop:   {type: delete, method: DELETE, path: /all}
---
kind: policy
name: test
rules:
  - name: size-limit
    match: {connector: up, action: create}
    decision: ALLOW_WITH_CONSTRAINTS
    constraints:
      args.size: {max: 10}
  - name: no-purge
    match: {connector: up, action: purge}
    decision: DENY
    reason: purging is never allowed
`

// maxBody is the request body limit the test server runs with.
const maxBody = 2048

// upstream is the system the http connector calls. It answers every request
// with JSON describing it (500 for /api/items/broken) and counts requests.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int // "METHOD /path" → requests received
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{hits: map[string]int{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.hits[r.Method+" "+r.URL.Path]++
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/items/broken" {
			w.WriteHeader(http.StatusInternalServerError)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"upstream": true, "method": r.Method, "path": r.URL.Path, "body": string(body)})
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) count(key string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[key]
}

func (u *upstream) total() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, c := range u.hits {
		n += c
	}
	return n
}

// warden is one running server and a store handle on its database, opened
// the way the CLI opens it, for tokens and for checking the audit trail.
type warden struct {
	url   string
	store *sqlite.Store
	up    *upstream
}

func start(t *testing.T) *warden {
	t.Helper()
	up := newUpstream(t)
	cfgDir, db := apptest.Config(t, fmt.Sprintf(config, up.URL))
	srv := apptest.Start(t, app.Options{ConfigDir: cfgDir, DB: db, ApprovalTimeout: time.Second, MaxBody: maxBody})
	st, err := app.OpenStore(context.Background(), db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &warden{url: srv.URL, store: st.(*sqlite.Store), up: up}
}

// token creates a token for p in the server's store.
func (w *warden) token(t *testing.T, p call.Principal) (string, sqlite.TokenInfo) {
	t.Helper()
	tok, info, err := w.store.CreateToken(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return tok, info
}

func (w *warden) agent(t *testing.T, name string) string {
	t.Helper()
	tok, _ := w.token(t, call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: name})
	return tok
}

// records returns the audit records of one call, in seq order.
func (w *warden) records(t *testing.T, callID string) []*audit.Record {
	t.Helper()
	recs, err := w.store.AuditRecords(context.Background(), sqlite.AuditFilter{CallID: callID})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func kinds(recs []*audit.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Kind)
	}
	return out
}

// response is a decoded API response.
type response struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// do sends one request with exactly the given content type and body ("" for
// none) and token (a bearer token, or a whole Authorization header when it
// holds a space), and checks what every response must be: JSON, with no trace of a
// stack or a panic.
func (w *warden) do(t *testing.T, method, path, token, contentType, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, w.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch {
	case strings.Contains(token, " "): // a whole Authorization header
		req.Header.Set("Authorization", token)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	for _, bad := range []string{"goroutine", "panic"} {
		if strings.Contains(strings.ToLower(r.raw), bad) {
			t.Errorf("%s %s: response body mentions %q: %s", method, path, bad, r.raw)
		}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type = %q, want application/json", method, path, ct)
	}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: %d response is not a JSON object: %v: %s", method, path, r.status, err, raw)
	}
	return r
}

func (w *warden) post(t *testing.T, path, token string, v any) response {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return w.do(t, http.MethodPost, path, token, "application/json", string(b))
}

func (w *warden) get(t *testing.T, path, token string) response {
	t.Helper()
	return w.do(t, http.MethodGet, path, token, "", "")
}

// apiError returns the code and message of an error response, failing the
// test unless the body is {"error": {"code": "...", "message": "..."}}.
func apiError(t *testing.T, r response) (code, msg string) {
	t.Helper()
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		t.Fatalf("%d response has no error object: %s", r.status, r.raw)
	}
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	if code == "" || msg == "" {
		t.Errorf("error object lacks a code or a message: %s", r.raw)
	}
	return code, msg
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func strs(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestCalls(t *testing.T) {
	t.Parallel()
	w := start(t)
	bot := w.agent(t, "bot")

	tests := []struct {
		name         string
		action       string
		args         map[string]any
		wantHTTP     int
		wantDecision string
		wantStatus   string
		wantRules    []string
		wantReason   string // a substring
		wantUpstream string // the upstream request it makes, "" for none
		wantKinds    []string
	}{
		{
			name: "allow", action: "get", args: map[string]any{"id": "a-1"},
			wantHTTP: 200, wantDecision: "ALLOW", wantStatus: "succeeded", wantRules: []string{"permission"},
			wantReason: "permission for up.get is on", wantUpstream: "GET /api/items/a-1",
			wantKinds: []string{audit.KindDecision, audit.KindOutcome},
		},
		{
			name: "allow with constraints", action: "create", args: map[string]any{"size": 3, "name": "small"},
			wantHTTP: 200, wantDecision: "ALLOW_WITH_CONSTRAINTS", wantStatus: "succeeded", wantRules: []string{"size-limit"},
			wantReason: "within constraints", wantUpstream: "POST /api/items",
			wantKinds: []string{audit.KindDecision, audit.KindOutcome},
		},
		{
			name: "upstream fails", action: "get", args: map[string]any{"id": "broken"},
			wantHTTP: 200, wantDecision: "ALLOW", wantStatus: "failed", wantRules: []string{"permission"},
			wantReason: "permission for up.get is on", wantUpstream: "GET /api/items/broken",
			wantKinds: []string{audit.KindDecision, audit.KindOutcome},
		},
		{
			name: "deny by rule", action: "purge",
			wantHTTP: 403, wantDecision: "DENY", wantStatus: "refused", wantRules: []string{"no-purge"},
			wantReason: "purging is never allowed", wantKinds: []string{audit.KindDecision},
		},
		{
			name: "deny by permission", action: "drop",
			wantHTTP: 403, wantDecision: "DENY", wantStatus: "refused", wantRules: []string{"permission"},
			wantReason: "permission for up.drop is off", wantKinds: []string{audit.KindDecision},
		},
		{
			name: "constraint violated", action: "create", args: map[string]any{"size": 11},
			wantHTTP: 403, wantDecision: "DENY", wantStatus: "refused", wantRules: []string{"size-limit"},
			wantReason: "args.size max 10", wantKinds: []string{audit.KindDecision},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := w.up.total()
			beforeKey := w.up.count(tt.wantUpstream)
			r := w.post(t, "/v1/calls", bot, map[string]any{"connector": "up", "action": tt.action, "args": tt.args})
			if r.status != tt.wantHTTP {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantHTTP, r.raw)
			}
			id := str(r.body, "id")
			if !strings.HasPrefix(id, "call") {
				t.Errorf("id = %q, want a call id", id)
			}
			if got := str(r.body, "decision"); got != tt.wantDecision {
				t.Errorf("decision = %q, want %q", got, tt.wantDecision)
			}
			if got := str(r.body, "status"); got != tt.wantStatus {
				t.Errorf("status = %q, want %q", got, tt.wantStatus)
			}
			if got := strs(r.body["rules"]); !slices.Equal(got, tt.wantRules) {
				t.Errorf("rules = %q, want %q", got, tt.wantRules)
			}
			if got := str(r.body, "reason"); !strings.Contains(got, tt.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", got, tt.wantReason)
			}
			if str(r.body, "config_version") == "" {
				t.Error("no config_version in the response")
			}

			// The upstream saw exactly the request the call makes, once.
			wantCalls := 0
			if tt.wantUpstream != "" {
				wantCalls = 1
				if got := w.up.count(tt.wantUpstream) - beforeKey; got != 1 {
					t.Errorf("upstream got %d × %s, want 1", got, tt.wantUpstream)
				}
			}
			if got := w.up.total() - before; got != wantCalls {
				t.Errorf("upstream called %d times, want %d", got, wantCalls)
			}
			if tt.wantUpstream != "" {
				res, _ := r.body["result"].(map[string]any)
				body, _ := res["body"].(map[string]any)
				if body["upstream"] != true || str(body, "path") != strings.SplitN(tt.wantUpstream, " ", 2)[1] {
					t.Errorf("result does not carry the upstream's JSON: %s", r.raw)
				}
				if tt.wantStatus == "failed" && !strings.Contains(str(r.body, "error"), "500") {
					t.Errorf("error = %q, want it to name the upstream's 500", str(r.body, "error"))
				}
			} else if r.body["result"] != nil {
				t.Errorf("a refused call has a result: %s", r.raw)
			}

			// GET /v1/calls/{id} tells the same story.
			g := w.get(t, "/v1/calls/"+id, bot)
			if g.status != 200 || str(g.body, "status") != tt.wantStatus || str(g.body, "decision") != tt.wantDecision {
				t.Errorf("GET /v1/calls/%s = %d %s, want 200 with status %s", id, g.status, g.raw, tt.wantStatus)
			}

			// The audit trail: the decision first (refused calls carry their
			// outcome on it), then the outcome of what ran.
			recs := w.records(t, id)
			if got := kinds(recs); !slices.Equal(got, tt.wantKinds) {
				t.Fatalf("audit kinds = %q, want %q", got, tt.wantKinds)
			}
			for _, rec := range recs {
				if rec.Decision != tt.wantDecision || rec.Agent != "bot" || rec.Connector != "up" || rec.Action != tt.action || rec.FrontEnd != "rest" || rec.ConfigVersion == "" {
					t.Errorf("record %d = %+v, want the call's decision, agent, connector, action, front end and config version", rec.Seq, rec)
				}
			}
			last := recs[len(recs)-1]
			if last.Outcome != tt.wantStatus {
				t.Errorf("last record's outcome = %q, want %q", last.Outcome, tt.wantStatus)
			}
			if tt.wantUpstream != "" && !strings.HasPrefix(last.ResultDigest, "sha256:") {
				t.Errorf("outcome record has no result digest: %+v", last)
			}
		})
	}
}

func TestContentTypeParameters(t *testing.T) {
	t.Parallel()
	w := start(t)
	bot := w.agent(t, "bot")
	for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON"} {
		r := w.do(t, http.MethodPost, "/v1/calls", bot, ct, `{"connector":"up","action":"get","args":{"id":"ct"}}`)
		if r.status != 200 || str(r.body, "status") != "succeeded" {
			t.Errorf("Content-Type %q: %d %s, want 200", ct, r.status, r.raw)
		}
	}
}

func TestPendingCallExpires(t *testing.T) {
	t.Parallel()
	w := start(t)
	bot := w.agent(t, "bot")
	pay := map[string]any{"connector": "up", "action": "pay", "args": map[string]any{"amount_cents": 500}}

	t.Run("poll", func(t *testing.T) {
		t.Parallel()
		sent := time.Now()
		r := w.post(t, "/v1/calls", bot, pay)
		if r.status != http.StatusAccepted || str(r.body, "status") != "pending" || str(r.body, "decision") != "REQUIRE_APPROVAL" {
			t.Fatalf("got %d %s, want 202 pending REQUIRE_APPROVAL", r.status, r.raw)
		}
		exp, err := time.Parse(time.RFC3339Nano, str(r.body, "expires_at"))
		if err != nil {
			t.Fatalf("expires_at: %v in %s", err, r.raw)
		}
		if d := exp.Sub(sent); d < 500*time.Millisecond || d > 3*time.Second {
			t.Errorf("expires_at is %v after the call, want about the 1s approval timeout", d)
		}
		id := str(r.body, "id")
		if g := w.get(t, "/v1/calls/"+id, bot); g.status != 200 || str(g.body, "status") != "pending" {
			t.Errorf("GET without wait = %d %s, want 200 pending", g.status, g.raw)
		}

		start := time.Now()
		g := w.get(t, "/v1/calls/"+id+"?wait=5s", bot)
		if g.status != 200 || str(g.body, "status") != "expired" {
			t.Fatalf("GET ?wait=5s = %d %s, want 200 expired", g.status, g.raw)
		}
		if waited := time.Since(start); waited >= 5*time.Second {
			t.Errorf("the long poll took %v: it did not return when the call expired", waited)
		}
		recs := w.records(t, id)
		if got, want := kinds(recs), []string{audit.KindDecision, audit.KindExpired}; !slices.Equal(got, want) {
			t.Fatalf("audit kinds = %q, want %q", got, want)
		}
		if recs[1].Outcome != audit.OutcomeExpired || recs[1].Decision != "REQUIRE_APPROVAL" {
			t.Errorf("expired record = %+v, want outcome expired under REQUIRE_APPROVAL", recs[1])
		}
	})
	t.Run("wait in the call", func(t *testing.T) {
		t.Parallel()
		withWait := map[string]any{"connector": "up", "action": "pay", "args": map[string]any{"amount_cents": 7}, "wait": "5s"}
		r := w.post(t, "/v1/calls", bot, withWait)
		if r.status != http.StatusForbidden || str(r.body, "status") != "expired" || str(r.body, "decision") != "REQUIRE_APPROVAL" {
			t.Fatalf("got %d %s, want 403 expired", r.status, r.raw)
		}
	})
	t.Cleanup(func() {
		if n := w.up.total(); n != 0 {
			t.Errorf("the upstream was called %d times for calls nobody approved", n)
		}
	})
}

func TestDecideAndReportOutcome(t *testing.T) {
	t.Parallel()
	w := start(t)
	bot := w.agent(t, "bot")
	other := w.agent(t, "other")

	r := w.post(t, "/v1/decide", bot, map[string]any{"connector": "up", "action": "get", "args": map[string]any{"id": "d-1"}})
	if r.status != 200 || str(r.body, "decision") != "ALLOW" || str(r.body, "status") != "decided" {
		t.Fatalf("decide = %d %s, want 200 ALLOW decided", r.status, r.raw)
	}
	id := str(r.body, "id")
	denied := w.post(t, "/v1/decide", bot, map[string]any{"connector": "up", "action": "purge"})
	if denied.status != 200 || str(denied.body, "decision") != "DENY" || !strings.Contains(str(denied.body, "reason"), "purging is never allowed") {
		t.Fatalf("decide on a denied action = %d %s, want 200 DENY with the rule's reason", denied.status, denied.raw)
	}
	ran := w.post(t, "/v1/calls", bot, map[string]any{"connector": "up", "action": "get", "args": map[string]any{"id": "c-1"}})
	if ran.status != 200 {
		t.Fatalf("call = %d %s", ran.status, ran.raw)
	}
	if n := w.up.count("GET /api/items/d-1"); n != 0 {
		t.Errorf("decide executed the call: the upstream got %d requests", n)
	}
	if got, want := kinds(w.records(t, id)), []string{audit.KindDecisionOnly}; !slices.Equal(got, want) {
		t.Errorf("after decide, audit kinds = %q, want %q", got, want)
	}

	outcome := map[string]any{"status": "succeeded", "result": map[string]any{"rows": 3}, "duration_ms": 12, "tokens": 40}
	steps := []struct {
		name     string
		token    string
		id       string
		body     any
		wantHTTP int
		wantCode string
	}{
		{"another agent cannot report", other, id, outcome, 404, "not_found"},
		{"bad status", bot, id, map[string]any{"status": "great"}, 400, "invalid_status"},
		{"negative tokens", bot, id, map[string]any{"status": "succeeded", "tokens": -1}, 400, "invalid_field"},
		{"report", bot, id, outcome, 200, ""},
		{"second report", bot, id, outcome, 409, "not_reportable"},
		{"a call warden ran", bot, str(ran.body, "id"), outcome, 409, "not_reportable"},
		{"a denied decision", bot, str(denied.body, "id"), outcome, 409, "not_reportable"},
		{"no such call", bot, "call_nope", outcome, 404, "not_found"},
	}
	for _, s := range steps {
		r := w.post(t, "/v1/calls/"+s.id+"/outcome", s.token, s.body)
		if r.status != s.wantHTTP {
			t.Errorf("%s: status = %d, want %d: %s", s.name, r.status, s.wantHTTP, r.raw)
			continue
		}
		if s.wantCode == "" {
			if str(r.body, "status") != "succeeded" {
				t.Errorf("%s: %s, want status succeeded", s.name, r.raw)
			}
			continue
		}
		if code, _ := apiError(t, r); code != s.wantCode {
			t.Errorf("%s: code = %q, want %q", s.name, code, s.wantCode)
		}
	}

	recs := w.records(t, id)
	if got, want := kinds(recs), []string{audit.KindDecisionOnly, audit.KindReportedOutcome}; !slices.Equal(got, want) {
		t.Fatalf("audit kinds = %q, want %q", got, want)
	}
	rep := recs[1]
	if rep.Outcome != "succeeded" || rep.DurationMS != 12 || rep.Tokens != 40 || !strings.HasPrefix(rep.ResultDigest, "sha256:") {
		t.Errorf("reported_outcome record = %+v, want outcome, duration, tokens and result digest as reported", rep)
	}
	if g := w.get(t, "/v1/calls/"+id, bot); str(g.body, "status") != "succeeded" {
		t.Errorf("GET after the report = %s, want status succeeded", g.raw)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	w := start(t)
	bot := w.agent(t, "bot")
	auditor, _ := w.token(t, call.Principal{Role: call.RoleAuditor, Name: "alice"})
	const js = "application/json"

	tests := []struct {
		name        string
		method      string
		path        string
		token       string
		contentType string
		body        string
		wantHTTP    int
		wantMsg     string // a substring of error.message
	}{
		{"malformed JSON", "POST", "/v1/calls", bot, js, `{"connector": "up", "action":`, 400, "malformed JSON"},
		{"not an object", "POST", "/v1/calls", bot, js, `["up", "get"]`, 400, "must be a JSON object"},
		{"empty body", "POST", "/v1/calls", bot, js, ``, 400, "empty body"},
		{"trailing data", "POST", "/v1/calls", bot, js, `{"connector":"up","action":"get","args":{"id":"1"}} {}`, 400, "after the JSON object"},
		{"body over the limit", "POST", "/v1/calls", bot, js, `{"connector":"up","action":"get","args":{"id":"` + strings.Repeat("x", maxBody) + `"}}`, 413, fmt.Sprint(maxBody)},
		{"wrong content type", "POST", "/v1/calls", bot, "text/plain", `{"connector":"up","action":"get"}`, 415, "application/json"},
		{"no content type", "POST", "/v1/calls", bot, "", `{"connector":"up","action":"get"}`, 415, "application/json"},
		{"form content type on decide", "POST", "/v1/decide", bot, "application/x-www-form-urlencoded", `connector=up`, 415, "application/json"},
		{"unknown field", "POST", "/v1/calls", bot, js, `{"connector":"up","action":"get","sudo":true}`, 400, `unknown field "sudo"`},
		{"wrong type", "POST", "/v1/calls", bot, js, `{"connector":5,"action":"get"}`, 400, "connector"},
		{"args not an object", "POST", "/v1/calls", bot, js, `{"connector":"up","action":"get","args":[1]}`, 400, "args"},
		{"missing connector", "POST", "/v1/calls", bot, js, `{"action":"get"}`, 400, "connector: required"},
		{"unknown connector", "POST", "/v1/calls", bot, js, `{"connector":"nope","action":"get"}`, 400, `unknown connector "nope"`},
		{"unknown action", "POST", "/v1/calls", bot, js, `{"connector":"up","action":"nope"}`, 400, `no action "nope"`},
		{"args fail input_schema: type", "POST", "/v1/calls", bot, js, `{"connector":"up","action":"get","args":{"id":5}}`, 400, "args.id"},
		{"args fail input_schema: required", "POST", "/v1/calls", bot, js, `{"connector":"up","action":"get","args":{}}`, 400, "id"},
		{"bad wait", "POST", "/v1/calls", bot, js, `{"connector":"up","action":"get","args":{"id":"1"},"wait":"soon"}`, 400, "wait"},
		{"wait on decide", "POST", "/v1/decide", bot, js, `{"connector":"up","action":"get","args":{"id":"1"},"wait":"1s"}`, 400, "wait"},
		{"bad outcome body", "POST", "/v1/calls/call_x/outcome", bot, js, `{"status":"succeeded","cost_usd":"free"}`, 400, "cost_usd"},
		{"missing token", "POST", "/v1/calls", "", js, `{"connector":"up","action":"get","args":{"id":"1"}}`, 401, "bearer token"},
		{"garbage token", "POST", "/v1/calls", "not-a-token", js, `{"connector":"up","action":"get","args":{"id":"1"}}`, 401, "unknown or revoked"},
		{"well-formed unknown token", "GET", "/v1/calls/call_x", "wdn_" + strings.Repeat("A", 43), "", "", 401, "unknown or revoked"},
		{"basic auth", "GET", "/v1/calls/call_x", "Basic Ym90OmJvdA==", "", "", 401, "bearer token"},
		{"empty bearer", "GET", "/v1/calls/call_x", "Bearer ", "", "", 401, "bearer token"},
		{"wrong method", "GET", "/v1/decide", bot, "", "", 404, "GET /v1/decide"},
		{"agent reads the audit", "GET", "/v1/audit", bot, "", "", 403, "an agent token cannot"},
		{"auditor makes a call", "POST", "/v1/calls", auditor, js, `{"connector":"up","action":"get","args":{"id":"1"}}`, 403, "an auditor token cannot"},
		{"bad audit decision", "GET", "/v1/audit?decision=MAYBE", auditor, "", "", 400, "decision"},
		{"bad audit limit", "GET", "/v1/audit?limit=0", auditor, "", "", 400, "limit"},
		{"bad audit since", "GET", "/v1/audit?since=yesterday", auditor, "", "", 400, "since"},
		{"bad wait on get", "GET", "/v1/calls/call_x?wait=forever", bot, "", "", 400, "wait"},
		{"no such call", "GET", "/v1/calls/call_x", bot, "", "", 404, "call_x"},
		{"no such endpoint", "GET", "/v1/nope", bot, "", "", 404, "/v1/nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.do(t, tt.method, tt.path, tt.token, tt.contentType, tt.body)
			if r.status != tt.wantHTTP {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantHTTP, r.raw)
			}
			_, msg := apiError(t, r)
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message = %q, want it to name %q", msg, tt.wantMsg)
			}
			if wa := r.header.Get("WWW-Authenticate"); (tt.wantHTTP == 401) != strings.HasPrefix(wa, "Bearer") {
				t.Errorf("WWW-Authenticate = %q on a %d", wa, r.status)
			}
		})
	}
	if n := w.up.total(); n != 0 {
		t.Errorf("bad requests reached the upstream %d times", n)
	}
	// Requests refused before a decision (malformed, unauthenticated) leave
	// no record; an authenticated agent naming an unknown connector or
	// action, or sending args its schema refuses, is decided and recorded
	// as refused: four of the cases above.
	recs, err := w.store.AuditRecords(context.Background(), sqlite.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var refused []string
	for _, r := range recs {
		if r.Kind != audit.KindDecision || r.Outcome != audit.OutcomeRefused || r.Error == "" {
			t.Errorf("unexpected record for a bad request: %+v", r)
		}
		refused = append(refused, r.Connector+"."+r.Action+" "+r.Decision)
	}
	want := []string{"nope.get DENY", "up.nope DENY", "up.get ALLOW", "up.get ALLOW"}
	if !slices.Equal(refused, want) {
		t.Errorf("recorded refusals = %q, want %q", refused, want)
	}
}

// TestUnknownAgentLearnsNothing: a valid token for an agent the config does
// not know is denied (and recorded) before anything about connectors,
// actions or schemas is checked, so its answers reveal none of them.
func TestUnknownAgentLearnsNothing(t *testing.T) {
	t.Parallel()
	w := start(t)
	ghost := w.agent(t, "ghost")
	for _, body := range []string{
		`{"connector":"up","action":"get","args":{}}`,
		`{"connector":"nope","action":"get"}`,
		`{"connector":"up","action":"nope"}`,
	} {
		r := w.do(t, "POST", "/v1/calls", ghost, "application/json", body)
		if r.status != 403 || r.body["decision"] != "DENY" || !strings.Contains(r.raw, "unknown agent") || strings.Contains(r.raw, "args.id") {
			t.Errorf("%s: %d %s; want 403 DENY for the unknown agent, nothing else", body, r.status, r.raw)
		}
	}
	if n := w.up.total(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
}

func TestTokensAndVisibility(t *testing.T) {
	t.Parallel()
	w := start(t)
	ctx := context.Background()
	bot, botInfo := w.token(t, call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "bot"})
	other := w.agent(t, "other")
	auditor, _ := w.token(t, call.Principal{Role: call.RoleAuditor, Name: "alice"})
	acmeAuditor, _ := w.token(t, call.Principal{Role: call.RoleAuditor, Tenant: "acme", Name: "bob"})
	get := map[string]any{"connector": "up", "action": "get", "args": map[string]any{"id": "v-1"}}

	r := w.post(t, "/v1/calls", bot, get)
	if r.status != 200 {
		t.Fatalf("call = %d %s", r.status, r.raw)
	}
	id := str(r.body, "id")

	t.Run("another agent cannot see the call", func(t *testing.T) {
		g := w.get(t, "/v1/calls/"+id, other)
		if g.status != 404 {
			t.Fatalf("GET by another agent = %d %s, want 404", g.status, g.raw)
		}
		if code, _ := apiError(t, g); code != "not_found" {
			t.Errorf("code = %q, want not_found", code)
		}
	})
	t.Run("an auditor can", func(t *testing.T) {
		if g := w.get(t, "/v1/calls/"+id, auditor); g.status != 200 || str(g.body, "id") != id {
			t.Errorf("GET by an auditor = %d %s, want 200", g.status, g.raw)
		}
	})
	t.Run("an auditor of another tenant cannot", func(t *testing.T) {
		if g := w.get(t, "/v1/calls/"+id, acmeAuditor); g.status != 404 {
			t.Errorf("GET by acme's auditor = %d %s, want 404", g.status, g.raw)
		}
		if g := w.get(t, "/v1/audit?tenant=default", acmeAuditor); g.status != 403 {
			t.Errorf("acme's auditor reading tenant default = %d %s, want 403", g.status, g.raw)
		}
		if g := w.get(t, "/v1/audit", acmeAuditor); g.status != 200 || len(g.body["records"].([]any)) != 0 {
			t.Errorf("acme's auditor reads records of another tenant: %d %s", g.status, g.raw)
		}
	})
	t.Run("revoked while the server runs", func(t *testing.T) {
		if err := w.store.RevokeToken(ctx, botInfo.ID); err != nil {
			t.Fatal(err)
		}
		w.waitRevoked(t, bot, "/v1/calls/"+id, time.Now())
		before := w.up.total()
		r := w.post(t, "/v1/calls", bot, get)
		if r.status != 401 {
			t.Fatalf("call with a revoked token = %d %s, want 401", r.status, r.raw)
		}
		if _, msg := apiError(t, r); !strings.Contains(msg, "revoked") {
			t.Errorf("message = %q, want it to say revoked", msg)
		}
		if w.up.total() != before {
			t.Error("a call with a revoked token reached the upstream")
		}
	})
	t.Run("all of an agent's tokens revoked", func(t *testing.T) {
		if n, err := w.store.RevokeAgentTokens(ctx, call.DefaultTenant, "other"); err != nil || n != 1 {
			t.Fatalf("RevokeAgentTokens = %d, %v", n, err)
		}
		w.waitRevoked(t, other, "/v1/calls/"+id, time.Now())
		if r := w.post(t, "/v1/calls", other, get); r.status != 401 {
			t.Errorf("call = %d %s, want 401", r.status, r.raw)
		}
	})
}

// revocationDelay is how late a revocation may take effect: the server
// reuses token lookups briefly, within the second the contract allows.
const revocationDelay = time.Second

// waitRevoked polls path with token until it answers 401, and fails if a
// request sent revocationDelay or more after revokedAt was still accepted.
func (w *warden) waitRevoked(t *testing.T, token, path string, revokedAt time.Time) {
	t.Helper()
	deadline := revokedAt.Add(3 * revocationDelay)
	for {
		sent := time.Now()
		r := w.get(t, path, token)
		if r.status == 401 {
			if wa := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer") {
				t.Errorf("401 without a Bearer challenge: WWW-Authenticate = %q", wa)
			}
			return
		}
		if late := sent.Sub(revokedAt); late >= revocationDelay {
			t.Fatalf("a revoked token was still accepted %v after its revocation (%d %s)", late, r.status, r.raw)
		}
		if time.Now().After(deadline) {
			t.Fatal("the revoked token was never refused")
		}
		time.Sleep(20 * time.Millisecond) // polling: nothing to wait on
	}
}

func TestAuditAPI(t *testing.T) {
	t.Parallel()
	w := start(t)
	bot := w.agent(t, "bot")
	other := w.agent(t, "other")
	auditor, _ := w.token(t, call.Principal{Role: call.RoleAuditor, Name: "alice"})
	admin, _ := w.token(t, call.Principal{Role: call.RoleAdmin, Name: "root"})

	calls := []struct {
		token  string
		action string
		args   map[string]any
	}{
		{bot, "get", map[string]any{"id": "1"}},    // ALLOW: decision + outcome
		{bot, "purge", nil},                        // DENY: decision
		{bot, "drop", nil},                         // DENY: decision
		{other, "get", map[string]any{"id": "2"}},  // ALLOW: decision + outcome
		{other, "purge", nil},                      // DENY (default-deny for other): decision
		{bot, "create", map[string]any{"size": 1}}, // ALLOW_WITH_CONSTRAINTS: decision + outcome
	}
	for _, c := range calls {
		if r := w.post(t, "/v1/calls", c.token, map[string]any{"connector": "up", "action": c.action, "args": c.args}); r.status != 200 && r.status != 403 {
			t.Fatalf("%s: %d %s", c.action, r.status, r.raw)
		}
	}

	tests := []struct {
		query     string
		wantCount int
		check     func(rec map[string]any) bool
	}{
		{"", 9, func(map[string]any) bool { return true }},
		{"?agent=other", 3, func(r map[string]any) bool { return r["agent"] == "other" }},
		{"?decision=DENY", 3, func(r map[string]any) bool { return r["decision"] == "DENY" }},
		{"?agent=bot&decision=ALLOW", 2, func(r map[string]any) bool { return r["agent"] == "bot" && r["decision"] == "ALLOW" }},
		{"?limit=4", 4, func(map[string]any) bool { return true }},
		{"?since=1h", 9, func(map[string]any) bool { return true }},
		{"?until=1h", 0, nil},
		{"?agent=nobody", 0, nil},
	}
	for _, tt := range tests {
		for _, tok := range []string{auditor, admin} {
			r := w.get(t, "/v1/audit"+tt.query, tok)
			if r.status != 200 {
				t.Fatalf("GET /v1/audit%s = %d %s", tt.query, r.status, r.raw)
			}
			recs, ok := r.body["records"].([]any)
			if !ok {
				t.Fatalf("GET /v1/audit%s: no records array: %s", tt.query, r.raw)
			}
			if len(recs) != tt.wantCount {
				t.Errorf("GET /v1/audit%s: %d records, want %d", tt.query, len(recs), tt.wantCount)
			}
			var prev float64
			for _, x := range recs {
				rec := x.(map[string]any)
				seq, _ := rec["seq"].(float64)
				if seq <= prev || str(rec, "hash") == "" || str(rec, "call_id") == "" {
					t.Errorf("GET /v1/audit%s: record out of order or incomplete: %v", tt.query, rec)
				}
				prev = seq
				if !tt.check(rec) {
					t.Errorf("GET /v1/audit%s: record does not match the filter: %v", tt.query, rec)
				}
			}
		}
	}
}

// TestGoClient drives the API through internal/client, which the CLI and
// the load harness use.
func TestGoClient(t *testing.T) {
	t.Parallel()
	w := start(t)
	ctx := context.Background()
	auditor, _ := w.token(t, call.Principal{Role: call.RoleAuditor, Name: "alice"})
	c := client.New(w.url+"/", w.agent(t, "bot"))

	res, err := c.Call(ctx, client.CallRequest{Connector: "up", Action: "get", Args: map[string]any{"id": "cl-1"}})
	if err != nil || res.HTTPStatus != 200 || res.Decision != "ALLOW" || res.Status != "succeeded" || !strings.Contains(string(res.Result), `"upstream":true`) {
		t.Fatalf("Call = %+v, %v; want 200 ALLOW succeeded with the upstream's JSON", res, err)
	}
	got, err := c.GetCall(ctx, res.ID, time.Second)
	if err != nil || got["status"] != "succeeded" || got["id"] != res.ID {
		t.Errorf("GetCall = %v, %v", got, err)
	}
	if res, err := c.Call(ctx, client.CallRequest{Connector: "up", Action: "purge"}); err != nil || res.HTTPStatus != 403 || res.Decision != "DENY" || len(res.Rules) != 1 {
		t.Errorf("Call(purge) = %+v, %v; want a 403 DENY result, not an error", res, err)
	}
	if res, err := c.Call(ctx, client.CallRequest{Connector: "up", Action: "pay"}); err != nil || res.HTTPStatus != 202 || res.Status != "pending" || res.ExpiresAt == nil {
		t.Errorf("Call(pay) = %+v, %v; want a 202 pending result with expires_at", res, err)
	}
	var ae *client.Error
	if _, err := c.Call(ctx, client.CallRequest{Connector: "nope", Action: "get"}); !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "unknown_connector" {
		t.Errorf("Call(unknown connector) err = %v, want a 400 unknown_connector *client.Error", err)
	}

	d, err := c.Decide(ctx, client.CallRequest{Connector: "up", Action: "get", Args: map[string]any{"id": "cl-2"}})
	if err != nil || d.Decision != "ALLOW" || d.Status != "decided" {
		t.Fatalf("Decide = %+v, %v", d, err)
	}
	if err := c.ReportOutcome(ctx, d.ID, client.Outcome{Status: "succeeded", Result: json.RawMessage(`{"ok":true}`), DurationMS: 3}); err != nil {
		t.Errorf("ReportOutcome = %v", err)
	}
	if err := c.ReportOutcome(ctx, d.ID, client.Outcome{Status: "succeeded"}); !errors.As(err, &ae) || ae.Status != 409 {
		t.Errorf("second ReportOutcome err = %v, want a 409 *client.Error", err)
	}
	if w.up.count("GET /api/items/cl-2") != 0 {
		t.Error("Decide executed the call")
	}

	recs, err := client.New(w.url, auditor).Audit(ctx, url.Values{"agent": {"bot"}, "decision": {"ALLOW"}})
	if err != nil || len(recs) != 4 { // get: decision + outcome; decide: decision_only + reported_outcome
		t.Errorf("Audit = %d records, %v; want 4", len(recs), err)
	}
	if _, err := client.New(w.url, "").Call(ctx, client.CallRequest{Connector: "up", Action: "get"}); !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("Call without a token err = %v, want a 401 *client.Error", err)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	w := start(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := w.get(t, p, ""); r.status != 200 {
			t.Errorf("GET %s = %d %s", p, r.status, r.raw)
		}
	}
}
