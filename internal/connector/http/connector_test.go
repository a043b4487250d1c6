package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	httpconn "github.com/warden-dev/warden/internal/connector/http"
	"github.com/warden-dev/warden/internal/connector/template"
)

// seen is what a test server received.
type seen struct {
	method string
	path   string // escaped, as sent
	query  url.Values
	header nethttp.Header
	body   string
}

// recorder starts a server that records one request and answers with the
// given status, content type and body.
func recorder(t *testing.T, status int, contentType, body string) (*httptest.Server, chan seen) {
	t.Helper()
	got := make(chan seen, 10)
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.Query(), header: r.Header.Clone(), body: string(b)}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func newConnector(t *testing.T, cfg httpconn.Config) *httpconn.Connector {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	c, err := httpconn.New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func creds(m map[string]string) func(string) (string, error) {
	return func(name string) (string, error) {
		v, ok := m[name]
		if !ok {
			return "", errors.New("not bound")
		}
		return v, nil
	}
}

func TestGetPathAndQuery(t *testing.T) {
	srv, got := recorder(t, 200, "application/json", `{"ok":true}`)
	c := newConnector(t, httpconn.Config{
		BaseURL: srv.URL + "/api/v3/?fixed=1",
		Actions: map[string]httpconn.Action{
			"list": {
				Path:  "/users/{args.name}/repos/{args.repo.id}",
				Query: map[string]string{"q": "{args.q}", "per_page": "{args.n}", "tags": "{args.tags}"},
			},
		},
	})
	args := map[string]any{
		"name": "a/b c",
		"repo": map[string]any{"id": int64(7)},
		"q":    "x&y=z ü",
		"n":    float64(100),
		"tags": []any{"a", "b"},
	}
	res, err := c.Execute(context.Background(), "list", args, nil)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	r := <-got
	if r.method != "GET" {
		t.Errorf("method = %q, want GET", r.method)
	}
	if want := "/api/v3/users/a%2Fb%20c/repos/7"; r.path != want {
		t.Errorf("path = %q, want %q", r.path, want)
	}
	wantQ := url.Values{"fixed": {"1"}, "q": {"x&y=z ü"}, "per_page": {"100"}, "tags": {`["a","b"]`}}
	if !reflect.DeepEqual(r.query, wantQ) {
		t.Errorf("query = %v, want %v", r.query, wantQ)
	}
	if got, want := r.header.Get("User-Agent"), "warden"; got != want {
		t.Errorf("User-Agent = %q, want %q", got, want)
	}
	if r.body != "" {
		t.Errorf("GET sent a body %q", r.body)
	}
	if res.Status != 200 || !reflect.DeepEqual(res.Body, map[string]any{"ok": true}) {
		t.Errorf("result = %+v", res)
	}
}

func TestPostWholeArgs(t *testing.T) {
	srv, got := recorder(t, 201, "application/json", `{"id":12345678901234}`)
	c := newConnector(t, httpconn.Config{
		BaseURL: srv.URL,
		Actions: map[string]httpconn.Action{"create": {Method: "post", Path: "/items", Body: "{args}"}},
	})
	args := map[string]any{"title": "<b>hi</b>", "count": int64(3), "ratio": 0.5, "nested": map[string]any{"ok": true}}
	res, err := c.Execute(context.Background(), "create", args, nil)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	r := <-got
	if r.method != "POST" {
		t.Errorf("method = %q, want POST", r.method)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if want := `{"count":3,"nested":{"ok":true},"ratio":0.5,"title":"<b>hi</b>"}`; r.body != want {
		t.Errorf("body = %s, want %s", r.body, want)
	}
	if res.Status != 201 {
		t.Errorf("status = %d, want 201", res.Status)
	}
	if want := map[string]any{"id": int64(12345678901234)}; !reflect.DeepEqual(res.Body, want) {
		t.Errorf("result body = %#v, want %#v", res.Body, want)
	}
}

func TestMapBody(t *testing.T) {
	srv, got := recorder(t, 200, "", "")
	c := newConnector(t, httpconn.Config{
		BaseURL: srv.URL,
		Actions: map[string]httpconn.Action{"send": {
			Method:  "PUT",
			Path:    "/m",
			Headers: map[string]string{"Content-Type": "application/vnd.test+json"},
			Body: map[string]any{
				"text":    "Hello {args.name}!",
				"count":   "{args.n}",
				"channel": map[string]any{"id": "{args.channel}", "kind": "public"},
				"list":    []any{"{args.n}", "x{{y}}", int64(5), true, nil},
				"token":   "{credentials.token}",
				"all":     "{args}",
			},
		}},
	})
	args := map[string]any{"name": "Ann", "n": int64(2), "channel": "C1"}
	if _, err := c.Execute(context.Background(), "send", args, creds(map[string]string{"token": "tk"})); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	r := <-got
	if ct := r.header.Get("Content-Type"); ct != "application/vnd.test+json" {
		t.Errorf("Content-Type = %q, want the action's own", ct)
	}
	var gotBody any
	if err := json.Unmarshal([]byte(r.body), &gotBody); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	want := map[string]any{
		"text":    "Hello Ann!",
		"count":   2.0,
		"channel": map[string]any{"id": "C1", "kind": "public"},
		"list":    []any{2.0, "x{y}", 5.0, true, nil},
		"token":   "tk",
		"all":     map[string]any{"name": "Ann", "n": 2.0, "channel": "C1"},
	}
	if !reflect.DeepEqual(gotBody, want) {
		t.Errorf("body = %v, want %v", gotBody, want)
	}
}

func TestHeadersAndCredentials(t *testing.T) {
	srv, got := recorder(t, 200, "text/plain", "ok")
	c := newConnector(t, httpconn.Config{
		BaseURL: srv.URL,
		Headers: map[string]string{
			"Authorization": "Bearer {credentials.token}",
			"X-Team":        "all",
			"accept":        "application/json",
		},
		Actions: map[string]httpconn.Action{
			"get":   {Path: "/", Headers: map[string]string{"X-Team": "{args.team}", "X-Key": "{credentials.token}"}},
			"plain": {Path: "/"},
		},
	})
	calls := map[string]int{}
	resolve := func(name string) (string, error) {
		calls[name]++
		return "tok-123", nil
	}
	if _, err := c.Execute(context.Background(), "get", map[string]any{"team": "blue"}, resolve); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	r := <-got
	for k, want := range map[string]string{"Authorization": "Bearer tok-123", "X-Team": "blue", "X-Key": "tok-123", "Accept": "application/json"} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if calls["token"] != 1 {
		t.Errorf("credential resolved %d times, want once per call", calls["token"])
	}
	if got, want := c.Credentials("get"), []string{"token"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Credentials(get) = %v, want %v", got, want)
	}
	if got := c.Credentials("nope"); got != nil {
		t.Errorf("Credentials(nope) = %v, want nil", got)
	}

	_, err := c.Execute(context.Background(), "plain", nil, creds(nil))
	var ce *template.CredentialError
	if !errors.As(err, &ce) || ce.Name != "token" {
		t.Fatalf("Execute with an unresolvable credential: error %v, want *template.CredentialError for token", err)
	}
	if want := `http connector "test" action "plain": headers.Authorization: credential "token": not bound`; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestMissingArgument(t *testing.T) {
	srv, got := recorder(t, 200, "", "")
	c := newConnector(t, httpconn.Config{
		BaseURL: srv.URL,
		Actions: map[string]httpconn.Action{
			"get":  {Path: "/repos/{args.repo}/{args.name}"},
			"q":    {Query: map[string]string{"state": "{args.state}"}},
			"body": {Method: "POST", Body: map[string]any{"a": map[string]any{"b": "{args.deep.x}"}}},
		},
	})
	tests := []struct {
		action string
		want   string
		path   string
	}{
		{"get", `http connector "test" action "get": path: missing argument args.repo`, "args.repo"},
		{"q", `http connector "test" action "q": query.state: missing argument args.state`, "args.state"},
		{"body", `http connector "test" action "body": body.a.b: missing argument args.deep`, "args.deep"},
	}
	for _, tt := range tests {
		_, err := c.Execute(context.Background(), tt.action, map[string]any{"name": "x"}, nil)
		var ae *template.ArgError
		if !errors.As(err, &ae) {
			t.Errorf("%s: error %v, want *template.ArgError", tt.action, err)
			continue
		}
		if ae.Path != tt.path {
			t.Errorf("%s: ArgError.Path = %q, want %q", tt.action, ae.Path, tt.path)
		}
		if err.Error() != tt.want {
			t.Errorf("%s: error\n got: %s\nwant: %s", tt.action, err, tt.want)
		}
	}
	select {
	case r := <-got:
		t.Errorf("a call with a missing argument reached the server: %+v", r)
	default:
	}
}

func TestUnsafeValues(t *testing.T) {
	srv, got := recorder(t, 200, "", "")
	c := newConnector(t, httpconn.Config{
		BaseURL: srv.URL,
		Actions: map[string]httpconn.Action{
			"file": {Path: "/files/{args.name}"},
			"hdr":  {Headers: map[string]string{"X-Name": "{args.name}"}},
		},
	})
	tests := []struct {
		action, name string
	}{
		{"file", ".."},
		{"file", "."},
		{"hdr", "a\r\nX-Injected: 1"},
		{"hdr", "nul\x00"},
	}
	for _, tt := range tests {
		_, err := c.Execute(context.Background(), tt.action, map[string]any{"name": tt.name}, nil)
		if !errors.Is(err, httpconn.ErrUnsafeValue) {
			t.Errorf("%s with %q: error %v, want ErrUnsafeValue", tt.action, tt.name, err)
		}
	}
	// Dots inside a segment are fine.
	if _, err := c.Execute(context.Background(), "file", map[string]any{"name": "..."}, nil); err != nil {
		t.Errorf("file with \"...\": %v", err)
	}
	if r := <-got; r.path != "/files/..." {
		t.Errorf("path = %q, want /files/...", r.path)
	}
}

func TestUnknownAction(t *testing.T) {
	c := newConnector(t, httpconn.Config{BaseURL: "https://api.example.com", Actions: map[string]httpconn.Action{"a": {}}})
	_, err := c.Execute(context.Background(), "b", nil, nil)
	if !errors.Is(err, httpconn.ErrUnknownAction) {
		t.Errorf("error %v, want ErrUnknownAction", err)
	}
	if got, want := c.Actions(), []string{"a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Actions() = %v, want %v", got, want)
	}
}

func TestNonSuccessIsAResult(t *testing.T) {
	srv, _ := recorder(t, 404, "application/problem+json", `{"title":"not found","status":404}`)
	c := newConnector(t, httpconn.Config{BaseURL: srv.URL, Actions: map[string]httpconn.Action{"get": {}}})
	res, err := c.Execute(context.Background(), "get", nil, nil)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if want := (&httpconn.Result{Status: 404, Headers: map[string]string{"Content-Type": "application/problem+json"}, Body: map[string]any{"title": "not found", "status": int64(404)}}); !reflect.DeepEqual(res, want) {
		t.Errorf("result = %#v, want %#v", res, want)
	}
}

func TestResponseDecoding(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		want                    any
	}{
		{"json", "application/json; charset=utf-8", `{"a":[1,2.5,"x",null]}`, map[string]any{"a": []any{int64(1), 2.5, "x", nil}}},
		{"json array", "application/json", `[1]`, []any{int64(1)}},
		{"vendor json", "application/vnd.github+json", `{"a":1}`, map[string]any{"a": int64(1)}},
		{"text", "text/plain", `{"a":1}`, `{"a":1}`},
		{"no type", "", "hello", "hello"},
		{"html", "text/html", "<p>x</p>", "<p>x</p>"},
		{"broken json", "application/json", `{"a":`, `{"a":`},
		{"trailing json", "application/json", `{} {}`, `{} {}`},
		{"empty json", "application/json", ``, nil},
		{"empty text", "text/plain", ``, ""},
		{"binary", "application/octet-stream", "a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
				w.Header()["Content-Type"] = []string{tt.contentType}
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c := newConnector(t, httpconn.Config{BaseURL: srv.URL, Actions: map[string]httpconn.Action{"get": {}}})
			res, err := c.Execute(context.Background(), "get", nil, nil)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if !reflect.DeepEqual(res.Body, tt.want) {
				t.Errorf("body = %#v, want %#v", res.Body, tt.want)
			}
		})
	}
}

func TestSelectedHeaders(t *testing.T) {
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("ETag", `"abc"`)
		h.Set("Link", `<https://x/?page=2>; rel="next"`)
		h.Set("x-ratelimit-remaining", "42")
		h.Set("X-RateLimit-Reset", "1700000000")
		h.Set("Retry-After", "30")
		h.Set("Location", "/items/1")
		h.Set("Set-Cookie", "session=secret")
		h.Set("Server", "test")
		w.WriteHeader(201)
	}))
	defer srv.Close()
	c := newConnector(t, httpconn.Config{BaseURL: srv.URL, Actions: map[string]httpconn.Action{"get": {}}})
	res, err := c.Execute(context.Background(), "get", nil, nil)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	want := map[string]string{
		"Content-Type":          "text/plain",
		"ETag":                  `"abc"`,
		"Link":                  `<https://x/?page=2>; rel="next"`,
		"X-RateLimit-Remaining": "42",
		"X-RateLimit-Reset":     "1700000000",
		"Retry-After":           "30",
		"Location":              "/items/1",
	}
	if !reflect.DeepEqual(res.Headers, want) {
		t.Errorf("headers = %v, want %v", res.Headers, want)
	}
}

func TestResponseCap(t *testing.T) {
	body := strings.Repeat("0123456789", 10)
	srv, _ := recorder(t, 200, "application/json", `"`+body+`"`)
	tests := []struct {
		max       int64
		truncated bool
		want      any
	}{
		{10, true, `"012345678`},
		{102, false, body},
		{0, false, body}, // default 1 MiB
	}
	for _, tt := range tests {
		c := newConnector(t, httpconn.Config{BaseURL: srv.URL, MaxResponseBytes: tt.max, Actions: map[string]httpconn.Action{"get": {}}})
		res, err := c.Execute(context.Background(), "get", nil, nil)
		if err != nil {
			t.Fatalf("max %d: Execute: %v", tt.max, err)
		}
		if res.Truncated != tt.truncated || !reflect.DeepEqual(res.Body, tt.want) {
			t.Errorf("max %d: Truncated=%v Body=%#v, want %v %#v", tt.max, res.Truncated, res.Body, tt.truncated, tt.want)
		}
	}
}

// redirector answers every request with a redirect to target(r).
func redirector(t *testing.T, hits *atomic.Int32, target func(r *nethttp.Request) string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		hits.Add(1)
		nethttp.Redirect(w, r, target(r), nethttp.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRedirects(t *testing.T) {
	var otherHits atomic.Int32
	other := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		otherHits.Add(1)
		io.WriteString(w, "other")
	}))
	defer other.Close()
	otherHost := strings.TrimPrefix(other.URL, "http://")

	var hits atomic.Int32
	toOther := redirector(t, &hits, func(*nethttp.Request) string { return other.URL + "/landing" })

	t.Run("refused", func(t *testing.T) {
		c := newConnector(t, httpconn.Config{BaseURL: toOther.URL, Actions: map[string]httpconn.Action{"get": {}}})
		_, err := c.Execute(context.Background(), "get", nil, nil)
		if !errors.Is(err, httpconn.ErrHostNotAllowed) {
			t.Fatalf("error %v, want ErrHostNotAllowed", err)
		}
		if !strings.Contains(err.Error(), `redirect to host "`+otherHost+`" refused`) {
			t.Errorf("error %q does not name the refused host %s", err, otherHost)
		}
		if n := otherHits.Load(); n != 0 {
			t.Errorf("the refused host got %d requests", n)
		}
	})

	t.Run("allowed", func(t *testing.T) {
		c := newConnector(t, httpconn.Config{BaseURL: toOther.URL, AllowHosts: []string{"127.0.0.1:*"}, Actions: map[string]httpconn.Action{"get": {}}})
		res, err := c.Execute(context.Background(), "get", nil, nil)
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}
		if res.Status != 200 || res.Body != "other" {
			t.Errorf("result %+v, want 200 from the other host", res)
		}
	})

	t.Run("too many", func(t *testing.T) {
		var loopHits atomic.Int32
		loop := redirector(t, &loopHits, func(r *nethttp.Request) string { return r.URL.Path + "x" })
		c := newConnector(t, httpconn.Config{BaseURL: loop.URL, Actions: map[string]httpconn.Action{"get": {Path: "/"}}})
		_, err := c.Execute(context.Background(), "get", nil, nil)
		if !errors.Is(err, httpconn.ErrTooManyRedirects) {
			t.Fatalf("error %v, want ErrTooManyRedirects", err)
		}
		if n := loopHits.Load(); n != httpconn.MaxRedirects+1 {
			t.Errorf("server saw %d requests, want %d (the first and %d redirects)", n, httpconn.MaxRedirects+1, httpconn.MaxRedirects)
		}
	})

	t.Run("https downgrade", func(t *testing.T) {
		tlsSrv := httptest.NewTLSServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
			nethttp.Redirect(w, r, other.URL, nethttp.StatusFound)
		}))
		defer tlsSrv.Close()
		c, err := httpconn.New(httpconn.Config{Name: "tls", BaseURL: tlsSrv.URL, AllowHosts: []string{"127.0.0.1:*"}, Actions: map[string]httpconn.Action{"get": {}}}, tlsSrv.Client())
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		_, err = c.Execute(context.Background(), "get", nil, nil)
		if !errors.Is(err, httpconn.ErrHostNotAllowed) || !strings.Contains(err.Error(), "redirect from https to http") {
			t.Errorf("error %v, want a refused downgrade", err)
		}
	})
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	c := newConnector(t, httpconn.Config{BaseURL: srv.URL, Timeout: 50 * time.Millisecond, Actions: map[string]httpconn.Action{"slow": {Path: "/slow"}}})
	_, err := c.Execute(context.Background(), "slow", nil, nil)
	var he *httpconn.Error
	if !errors.As(err, &he) || !he.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a timeout *httpconn.Error", err)
	}
	if want := `http connector "test" action "slow": GET ` + srv.URL + `/slow: timed out after 50ms`; err.Error() != want {
		t.Errorf("error\n got: %s\nwant: %s", err, want)
	}

	// The caller's own cancellation is reported as such.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Execute(ctx, "slow", nil, nil)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "canceled by the caller") {
		t.Errorf("canceled call: error %v, want context.Canceled", err)
	}
}

// TestErrorsScrubCredentials: a network error quotes the URL, which here
// holds a credential in its path and query; no form of it may survive.
func TestErrorsScrubCredentials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: the connection is refused

	const secret = `p@ss w/rd&"x"`
	c := newConnector(t, httpconn.Config{
		BaseURL: "http://" + addr,
		Headers: map[string]string{"Authorization": "Bearer {credentials.key}"},
		Actions: map[string]httpconn.Action{"get": {
			Path:  "/k/{credentials.key}",
			Query: map[string]string{"key": "{credentials.key}"},
		}},
	})
	_, err = c.Execute(context.Background(), "get", nil, creds(map[string]string{"key": secret}))
	var he *httpconn.Error
	if !errors.As(err, &he) {
		t.Fatalf("error %v (%T), want *httpconn.Error", err, err)
	}
	msg := err.Error()
	for _, form := range []string{secret, url.PathEscape(secret), url.QueryEscape(secret), "p@ss", "w/rd", "w%2Frd"} {
		if strings.Contains(msg, form) {
			t.Errorf("error %q contains the credential form %q", msg, form)
		}
	}
	if !strings.Contains(msg, "[REDACTED]") || !strings.Contains(msg, addr) {
		t.Errorf("error %q should name the address and show where the credential was", msg)
	}
	if errors.Unwrap(err) != nil {
		t.Errorf("a network error wraps %v; it must not expose the unscrubbed cause", errors.Unwrap(err))
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  httpconn.Config
		want []string
	}{
		{"no base", httpconn.Config{Name: "x"}, []string{`http connector "x": base_url is required`}},
		{"bad scheme", httpconn.Config{Name: "x", BaseURL: "ftp://h"}, []string{`base_url "ftp://h" must be an absolute http or https URL`}},
		{"relative", httpconn.Config{Name: "x", BaseURL: "/api"}, []string{`base_url "/api" must be an absolute http or https URL`}},
		{"userinfo", httpconn.Config{Name: "x", BaseURL: "https://u:p@h"}, []string{"base_url must not hold credentials"}},
		{"host not allowed", httpconn.Config{Name: "x", BaseURL: "https://api.example.com", AllowHosts: []string{"*.example.org"}}, []string{`base_url host "api.example.com" is not in allow_hosts [*.example.org]`}},
		{"bad glob", httpconn.Config{Name: "x", BaseURL: "https://h", AllowHosts: []string{"[a-"}}, []string{`allow_hosts entry "[a-" is not a valid host glob`}},
		{"negative", httpconn.Config{Name: "x", BaseURL: "https://h", Timeout: -1, MaxResponseBytes: -1}, []string{"timeout -1ns must be positive", "max response bytes -1 must be positive"}},
		{"header", httpconn.Config{Name: "x", BaseURL: "https://h", Headers: map[string]string{"Bad Name": "v", "X-A": "{credentials}"}}, []string{
			`http connector "x": headers.Bad Name: "Bad Name" is not a valid header name`,
			`http connector "x": headers.X-A: reference {credentials} at offset 0 must name a credential: {credentials.NAME}`,
		}},
		{"actions", httpconn.Config{Name: "x", BaseURL: "https://h", Actions: map[string]httpconn.Action{
			"get": {Path: "/items/{args.id", Query: map[string]string{"q": "{agrs.q}"}, Body: "{args.x}"},
			"put": {Method: "BAD METHOD", Path: "items?x=1", Headers: map[string]string{"X": "}"}, Body: map[string]any{"a": []any{"{nope}"}}},
			"del": {Body: 5},
		}}, []string{
			`http connector "x": action "del" body must be "{args}" or a map of templates, got int`,
			`http connector "x": action "get" path: unclosed '{' at offset 7; write '{{' for a literal '{'`,
			`http connector "x": action "get" query.q: unknown reference {agrs.q}; expected {args}, {args.NAME} or {credentials.NAME}`,
			`http connector "x": action "get" body must be "{args}" or a map of templates, got "{args.x}"`,
			`http connector "x": action "put" method "BAD METHOD" is not a valid HTTP method`,
			`http connector "x": action "put" path "items?x=1" must start with /`,
			`http connector "x": action "put" path "items?x=1" must not contain '?' or '#'; put query parameters under query`,
			`http connector "x": action "put" headers.X: unmatched '}' at offset 0; write '}}' for a literal '}'`,
			`http connector "x": action "put" body.a[0]: unknown reference {nope}; expected {args}, {args.NAME} or {credentials.NAME}`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := httpconn.New(tt.cfg, nil)
			if err == nil {
				t.Fatal("New: no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%s", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					if strings.Contains(l, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("no problem mentions %q in:\n%s", w, err)
				}
			}
		})
	}
}

func TestSyntaxErrorsAreTyped(t *testing.T) {
	_, err := httpconn.New(httpconn.Config{BaseURL: "https://h", Actions: map[string]httpconn.Action{"a": {Path: "/{x}"}}}, nil)
	var se *template.SyntaxError
	if !errors.As(err, &se) || se.Offset != 1 {
		t.Errorf("error %v, want a *template.SyntaxError at offset 1", err)
	}
}
