package server

// Unit tests of the console's sessions and CSRF checks: the Server runs
// with a fake Authenticator, a dispatcher over a fake approval store and a
// clock the test moves. The end-to-end test in a real browser is
// internal/app/console_test.go.

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
)

type fakeAuth struct {
	mu     sync.Mutex
	tokens map[string]call.Principal
}

func (a *fakeAuth) Authenticate(_ context.Context, token string) (call.Principal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.tokens[token]
	if !ok {
		return call.Principal{}, ErrBadToken
	}
	return p, nil
}

func (a *fakeAuth) revoke(token string) {
	a.mu.Lock()
	delete(a.tokens, token)
	a.mu.Unlock()
}

// fakeApprovals serves one pending call; votes never reach it in these
// tests (they are refused before), so it has no Commit.
type fakeApprovals struct {
	states []*dispatch.State
	err    error
	asked  int // ApprovalCalls and ApproverScope calls
	mu     sync.Mutex
}

func (f *fakeApprovals) CallByApproval(context.Context, string) (*dispatch.State, error) {
	return nil, dispatch.ErrNotFound
}

func (f *fakeApprovals) ApprovalCalls(context.Context, string, string, int) ([]*dispatch.State, error) {
	f.mu.Lock()
	f.asked++
	f.mu.Unlock()
	return f.states, f.err
}

func (f *fakeApprovals) ApprovedCalls(context.Context, int) ([]*dispatch.State, error) {
	return nil, nil
}

func (f *fakeApprovals) ApproverScope(context.Context, string) (approval.Scope, error) {
	f.mu.Lock()
	f.asked++
	f.mu.Unlock()
	return approval.Scope{}, nil
}

type consoleEnv struct {
	t    *testing.T
	h    http.Handler
	auth *fakeAuth
	apr  *fakeApprovals
	mu   sync.Mutex
	now  time.Time
}

func newConsoleEnv(t *testing.T) *consoleEnv {
	e := &consoleEnv{t: t, now: time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)}
	e.auth = &fakeAuth{tokens: map[string]call.Principal{
		"wdn_alice": {TokenID: "t1", Role: call.RoleApprover, Tenant: "default", Name: "alice"},
		"wdn_agent": {TokenID: "t2", Role: call.RoleAgent, Tenant: "default", Agent: "bot"},
		"wdn_admin": {TokenID: "t3", Role: call.RoleAdmin, Name: "root"},
		"wdn_audit": {TokenID: "t4", Role: call.RoleAuditor, Name: "eve"},
	}}
	exp := e.now.Add(time.Hour)
	e.apr = &fakeApprovals{states: []*dispatch.State{{
		ID: "call_1", Tenant: "default", Agent: "bot", Connector: "pay", Action: "refund", ActionType: "external",
		Environment: "production", Args: []byte(`{"order":"A-17","amount":500}`), Decision: call.RequireApproval,
		Rules: []string{"big-refunds"}, Reason: "refunds need a human", Status: dispatch.StatusPending,
		CreatedAt: e.now.Add(-2 * time.Minute), ExpiresAt: &exp, Approval: approval.New("apr_1", nil),
	}}}
	clock := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	d := dispatch.New(dispatch.Options{Approvals: e.apr, Now: clock}, nil)
	e.h = New(Options{Dispatcher: d, Auth: e.auth, Now: clock}).Handler()
	return e
}

func (e *consoleEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// do sends a request with the given cookies; form, when not nil, is POSTed.
func (e *consoleEnv) do(method, path string, form url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	e.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	for _, c := range cookies {
		if c != nil {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

func cookie(rec *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", body)
	}
	return m[1]
}

// signIn signs in with token and returns the session cookie and the
// session's CSRF token from the inbox.
func (e *consoleEnv) signIn(token string) (*http.Cookie, string) {
	e.t.Helper()
	page := e.do("GET", "/console/signin", nil)
	pre := cookie(page, signinCookie)
	rec := e.do("POST", "/console/signin", url.Values{"csrf": {csrfOf(e.t, page.Body.String())}, "token": {token}}, pre)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" {
		e.t.Fatalf("sign in: got %d %q, want 303 to /", rec.Code, rec.Header().Get("Location"))
	}
	sess := cookie(rec, sessionCookie)
	if sess == nil {
		e.t.Fatal("sign in: no session cookie")
	}
	inbox := e.do("GET", "/", nil, sess)
	if inbox.Code != http.StatusOK {
		e.t.Fatalf("inbox: got %d, want 200:\n%s", inbox.Code, inbox.Body)
	}
	return sess, csrfOf(e.t, inbox.Body.String())
}

func checkConsoleHeaders(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Security-Policy": consoleCSP,
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"Content-Type":            "text/html; charset=utf-8",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	if strings.Contains(rec.Body.String(), "<script>") {
		t.Error("page has an inline script")
	}
}

func TestConsoleSignIn(t *testing.T) {
	e := newConsoleEnv(t)

	// Not signed in: the inbox sends the browser to sign in.
	rec := e.do("GET", "/", nil)
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/console/signin") {
		t.Fatalf("GET / signed out: got %d %q, want 303 to the sign-in page", rec.Code, rec.Header().Get("Location"))
	}

	page := e.do("GET", "/console/signin", nil)
	checkConsoleHeaders(t, page)
	pre := cookie(page, signinCookie)
	if pre == nil || !pre.HttpOnly || pre.SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign-in CSRF cookie: got %+v, want HttpOnly SameSite=Strict", pre)
	}
	csrf := csrfOf(t, page.Body.String())

	tests := []struct {
		name   string
		form   url.Values
		pre    *http.Cookie
		status int
		want   string
	}{
		{"no csrf", url.Values{"token": {"wdn_alice"}}, pre, http.StatusForbidden, "did not come from this console"},
		{"no csrf cookie", url.Values{"csrf": {csrf}, "token": {"wdn_alice"}}, nil, http.StatusForbidden, "did not come from this console"},
		{"forged csrf", url.Values{"csrf": {csrf + "x"}, "token": {"wdn_alice"}}, pre, http.StatusForbidden, "did not come from this console"},
		{"agent token", url.Values{"csrf": {csrf}, "token": {"wdn_agent"}}, pre, http.StatusForbidden, "Only approver and admin tokens can sign in"},
		{"auditor token", url.Values{"csrf": {csrf}, "token": {"wdn_audit"}}, pre, http.StatusForbidden, "this is an auditor token"},
		{"unknown token", url.Values{"csrf": {csrf}, "token": {"wdn_nobody"}}, pre, http.StatusUnauthorized, "Unknown or revoked token"},
		{"empty token", url.Values{"csrf": {csrf}, "token": {" "}}, pre, http.StatusBadRequest, "Paste an approver or admin token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do("POST", "/console/signin", tt.form, tt.pre)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("got %d, want %d with %q:\n%s", rec.Code, tt.status, tt.want, rec.Body)
			}
			if c := cookie(rec, sessionCookie); c != nil && c.Value != "" {
				t.Errorf("got a session cookie %+v, want none", c)
			}
			checkConsoleHeaders(t, rec)
		})
	}

	rec = e.do("POST", "/console/signin", url.Values{"csrf": {csrf}, "token": {"wdn_alice"}}, pre)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("approver sign-in: got %d, want 303:\n%s", rec.Code, rec.Body)
	}
	sess := cookie(rec, sessionCookie)
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/" || sess.Secure {
		t.Fatalf("session cookie: got %+v, want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP", sess)
	}
	if sess.MaxAge != int(sessionTTL/time.Second) {
		t.Errorf("session cookie MaxAge: got %d, want %d", sess.MaxAge, int(sessionTTL/time.Second))
	}
	if strings.Contains(sess.Value, "wdn_alice") || strings.Contains(sess.Value, "alice") {
		t.Errorf("session cookie %q carries the token", sess.Value)
	}
	inbox := e.do("GET", "/", nil, sess)
	checkConsoleHeaders(t, inbox)
	for _, want := range []string{"approver:alice", "bot", "pay.refund", "external", "production", "big-refunds",
		"refunds need a human", "&#34;order&#34;: &#34;A-17&#34;", "2m ago", "in 1h0m", "0 of 1"} {
		if !strings.Contains(inbox.Body.String(), want) {
			t.Errorf("inbox lacks %q", want)
		}
	}
}

func TestConsoleSecureCookieOverTLS(t *testing.T) {
	e := newConsoleEnv(t)
	req := httptest.NewRequest("GET", "https://warden.example/console/signin", nil)
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if c := cookie(rec, signinCookie); c == nil || !c.Secure {
		t.Fatalf("sign-in cookie over TLS: got %+v, want Secure", c)
	}
	form := url.Values{"csrf": {csrfOf(t, rec.Body.String())}, "token": {"wdn_alice"}}
	req = httptest.NewRequest("POST", "https://warden.example/console/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookie(rec, signinCookie))
	req.TLS = &tls.ConnectionState{}
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if c := cookie(rec, sessionCookie); c == nil || !c.Secure {
		t.Fatalf("session cookie over TLS: got %+v, want Secure", c)
	}
}

func TestConsoleCSRF(t *testing.T) {
	e := newConsoleEnv(t)
	sess, csrf := e.signIn("wdn_alice")
	_, other := e.signIn("wdn_alice") // a second session: its token is not this one's
	if other == csrf {
		t.Fatal("two sessions share a CSRF token")
	}
	asked := e.apr.asked
	for _, path := range []string{"/console/approvals/apr_1/approve", "/console/approvals/apr_1/deny", "/console/signout"} {
		for name, form := range map[string]url.Values{
			"missing":       {"comment": {"ok"}},
			"empty":         {"csrf": {""}},
			"forged":        {"csrf": {strings.Repeat("A", len(csrf))}},
			"other session": {"csrf": {other}},
		} {
			rec := e.do("POST", path, form, sess)
			if rec.Code != http.StatusForbidden {
				t.Errorf("POST %s, %s CSRF token: got %d, want 403", path, name, rec.Code)
			}
			checkConsoleHeaders(t, rec)
		}
	}
	if e.apr.asked != asked {
		t.Errorf("a POST without a valid CSRF token reached the approval store")
	}
	// The session survived all that (signout was refused too).
	if rec := e.do("GET", "/", nil, sess); rec.Code != http.StatusOK {
		t.Fatalf("inbox after refused POSTs: got %d, want 200", rec.Code)
	}
	// A vote without a session is not a vote: sign in first.
	rec := e.do("POST", "/console/approvals/apr_1/approve", url.Values{"csrf": {csrf}})
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/console/signin") {
		t.Errorf("vote without a session: got %d %q, want 303 to sign in", rec.Code, rec.Header().Get("Location"))
	}
	// Sign out with the right token ends the session.
	rec = e.do("POST", "/console/signout", url.Values{"csrf": {csrf}}, sess)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/console/signin?m=signedout" {
		t.Fatalf("sign out: got %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if c := cookie(rec, sessionCookie); c == nil || c.MaxAge >= 0 {
		t.Errorf("sign out: session cookie %+v not cleared", c)
	}
	if rec := e.do("GET", "/", nil, sess); rec.Code != http.StatusSeeOther {
		t.Errorf("inbox after sign out: got %d, want 303 to sign in", rec.Code)
	}
}

func TestConsoleSessionEnds(t *testing.T) {
	t.Run("expired", func(t *testing.T) {
		e := newConsoleEnv(t)
		sess, _ := e.signIn("wdn_alice")
		e.advance(sessionTTL - time.Second)
		if rec := e.do("GET", "/", nil, sess); rec.Code != http.StatusOK {
			t.Fatalf("just before expiry: got %d, want 200", rec.Code)
		}
		e.advance(time.Second)
		rec := e.do("GET", "/", nil, sess)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/console/signin?m=expired" {
			t.Fatalf("expired session: got %d %q, want 303 to /console/signin?m=expired", rec.Code, rec.Header().Get("Location"))
		}
		page := e.do("GET", rec.Header().Get("Location"), nil, sess)
		if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "Your session expired") || !strings.Contains(page.Body.String(), `id="token"`) {
			t.Fatalf("sign-in page after expiry: got %d:\n%s", page.Code, page.Body)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		e := newConsoleEnv(t)
		sess, _ := e.signIn("wdn_alice")
		e.auth.revoke("wdn_alice")
		rec := e.do("GET", "/console/history", nil, sess)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/console/signin?m=revoked" {
			t.Fatalf("revoked token: got %d %q, want 303 to /console/signin?m=revoked", rec.Code, rec.Header().Get("Location"))
		}
	})
	t.Run("forged cookie", func(t *testing.T) {
		e := newConsoleEnv(t)
		rec := e.do("GET", "/", nil, &http.Cookie{Name: sessionCookie, Value: "wdn_alice"})
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("forged session cookie: got %d, want 303 to sign in", rec.Code)
		}
	})
}

func TestConsoleErrorsAndRoutes(t *testing.T) {
	e := newConsoleEnv(t)
	sess, _ := e.signIn("wdn_alice")
	e.apr.err = errors.New("sqlite: disk I/O error at /var/lib/warden/warden.db")
	rec := e.do("GET", "/", nil, sess)
	checkConsoleHeaders(t, rec)
	body := rec.Body.String()
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(body, "Something went wrong") || !strings.Contains(body, "err_") {
		t.Errorf("store failure: got %d, want 503 with a friendly page and an error id:\n%s", rec.Code, body)
	}
	if strings.Contains(body, "sqlite") || strings.Contains(body, "/var/lib") {
		t.Errorf("error page leaks internals:\n%s", body)
	}

	rec = e.do("GET", "/console/nope", nil, sess)
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "no such page") {
		t.Errorf("unknown console page: got %d, want 404 page", rec.Code)
	}
	checkConsoleHeaders(t, rec)

	// The API keeps its JSON 404s.
	for _, p := range []string{"/v1/nope", "/nope", "/v1/"} {
		rec := e.do("GET", p, nil)
		if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/json" || !strings.Contains(rec.Body.String(), `"not_found"`) {
			t.Errorf("GET %s: got %d %q %s, want a JSON 404", p, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
	}
	if rec := e.do("POST", "/", url.Values{}); rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: got %d, want 404 or 405", rec.Code)
	}

	for _, p := range []string{"/console/static/console.css", "/console/static/console.js"} {
		rec := e.do("GET", p, nil)
		if rec.Code != http.StatusOK || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: got %d, want 200 with nosniff", p, rec.Code)
		}
	}
	if rec := e.do("GET", "/console/static/", nil); rec.Code != http.StatusNotFound {
		t.Errorf("static directory listing: got %d, want 404", rec.Code)
	}
}
