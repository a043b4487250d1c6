package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/app/apptest"
	"github.com/warden-dev/warden/internal/call"
)

var updateGolden = flag.Bool("update-metrics", false, "rewrite testdata/metrics.golden")

// telemetryConfig has a call for every outcome: get (allowed, succeeds),
// broken (the upstream answers 500), locked (its credential cannot be
// resolved), purge (denied), pay (waits for a human). %s is the upstream.
const telemetryConfig = `
kind: agent
name: bot
owner: test@example.com
permissions:
  up: {get: on, broken: on, purge: on, pay: ask}
  locked: {open: on}
---
kind: connector
name: up
type: http
base_url: %[1]s
actions:
  get:    {type: read, method: GET, path: "/ok/{args.id}"}
  broken: {type: read, method: GET, path: "/fail"}
  purge:  {type: delete, method: DELETE, path: "/ok/{args.id}"}
  pay:    {type: external, method: POST, path: "/ok/pay"}
---
kind: connector
name: locked
type: http
base_url: %[1]s
credentials:
  token: env://WARDEN_TELEMETRY_TEST_UNSET_SECRET
actions:
  open: {type: read, method: GET, path: "/ok/open", headers: {Authorization: "Bearer {credentials.token}"}}
---
kind: policy
name: test
rules:
  - name: no-purge
    match: {connector: up, action: purge}
    decision: DENY
`

// plantedSecret is sent in args; it must never appear in a label.
const plantedSecret = "hunter2-planted-secret-value"

type telemetryRig struct {
	url   string
	token string
}

func startTelemetryRig(t *testing.T, approvalTimeout time.Duration) *telemetryRig {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/fail") {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(up.Close)
	cfgDir, db := apptest.Config(t, fmt.Sprintf(telemetryConfig, up.URL))
	srv := apptest.Start(t, app.Options{ConfigDir: cfgDir, DB: db, ApprovalTimeout: approvalTimeout, Logger: apptest.Logger(t, slog.LevelError)})
	rig := &telemetryRig{url: srv.URL}
	st := openStore(t, db)
	tok, _, err := st.CreateToken(context.Background(), call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "bot"})
	if err != nil {
		t.Fatal(err)
	}
	rig.token = tok
	return rig
}

// do sends a JSON request as the agent and decodes the answer into out.
func (r *telemetryRig) do(t *testing.T, method, path string, body any, hdr http.Header, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode
}

type callAnswer struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (r *telemetryRig) call(t *testing.T, connector, action string, args map[string]any, hdr http.Header) callAnswer {
	t.Helper()
	var a callAnswer
	r.do(t, http.MethodPost, "/v1/calls", map[string]any{"connector": connector, "action": action, "args": args}, hdr, &a)
	return a
}

// TestMetricsGolden drives calls of every outcome through app.Run, scrapes
// /metrics, and compares the set of warden_ metric names with their label
// names to testdata/metrics.golden; no label value may be an id, a token or
// a secret from the args.
func TestMetricsGolden(t *testing.T) {
	rig := startTelemetryRig(t, time.Second)
	args := map[string]any{"id": "x1", "note": plantedSecret}
	var ids []string
	want := map[string]string{}
	for _, c := range []struct{ connector, action, status string }{
		{"up", "get", "succeeded"},
		{"up", "broken", "failed"},
		{"locked", "open", "failed"},
		{"up", "purge", "refused"},
		{"up", "pay", "pending"},
	} {
		a := rig.call(t, c.connector, c.action, args, nil)
		if a.Status != c.status {
			t.Fatalf("%s/%s: status %q, want %q", c.connector, c.action, a.Status, c.status)
		}
		ids = append(ids, a.ID)
		want[a.ID] = c.status
	}
	// A name the config does not know is counted as _unknown.
	rig.do(t, http.MethodPost, "/v1/calls", map[string]any{"connector": "nope-" + plantedSecret, "action": "x", "args": args}, nil, nil)
	// A decide-only call and its reported tokens and cost.
	var dec callAnswer
	rig.do(t, http.MethodPost, "/v1/decide", map[string]any{"connector": "up", "action": "get", "args": args}, nil, &dec)
	ids = append(ids, dec.ID)
	if code := rig.do(t, http.MethodPost, "/v1/calls/"+dec.ID+"/outcome", map[string]any{"status": "succeeded", "tokens": 1200, "cost_usd": 0.03}, nil, nil); code != 200 {
		t.Fatalf("outcome: %d", code)
	}
	// The pending call expires after a second.
	var st callAnswer
	rig.do(t, http.MethodGet, "/v1/calls/"+ids[4]+"?wait=10s", nil, nil, &st)
	if st.Status != "expired" {
		t.Fatalf("pending call: %q after waiting, want expired", st.Status)
	}

	resp, err := http.Get(rig.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	text := string(body)

	series := map[string]bool{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "warden_") {
			continue
		}
		name, labels := line, ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name, labels = line[:i], line[i+1:strings.LastIndexByte(line, '}')]
		} else {
			name, _, _ = strings.Cut(line, " ")
		}
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suf); ok && strings.Contains(text, "# TYPE "+base+" histogram") {
				name = base
			}
		}
		var names []string
		for _, kv := range splitLabels(labels) {
			k, v, _ := strings.Cut(kv, "=")
			if k == "le" {
				continue
			}
			names = append(names, k)
			v = strings.Trim(v, `"`)
			for _, id := range ids {
				if strings.Contains(v, id) {
					t.Errorf("label %s=%q carries a call id", k, v)
				}
			}
			if strings.Contains(v, "wdn_") || strings.Contains(v, plantedSecret) || strings.Contains(v, "x1") {
				t.Errorf("label %s=%q carries a token or an argument", k, v)
			}
		}
		slices.Sort(names)
		series[name+"{"+strings.Join(names, ",")+"}"] = true
	}
	got := slices.Sorted(func(yield func(string) bool) {
		for k := range series {
			if !yield(k) {
				return
			}
		}
	})
	golden := filepath.Join("testdata", "metrics.golden")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantGolden, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./internal/app -run TestMetricsGolden -update-metrics writes it)", err)
	}
	if g := strings.Join(got, "\n") + "\n"; g != string(wantGolden) {
		t.Errorf("metric names and labels changed (-update-metrics rewrites %s):\ngot:\n%s\nwant:\n%s", golden, g, wantGolden)
	}

	// And the values say what happened.
	for _, s := range []string{
		`warden_calls_total{action="get",agent="bot",connector="up",decision="ALLOW",outcome="succeeded"} 1`,
		`warden_calls_total{action="broken",agent="bot",connector="up",decision="ALLOW",outcome="failed"} 1`,
		`warden_calls_total{action="purge",agent="bot",connector="up",decision="DENY",outcome="refused"} 1`,
		`warden_calls_total{action="pay",agent="bot",connector="up",decision="REQUIRE_APPROVAL",outcome="expired"} 1`,
		`warden_calls_total{action="_unknown",agent="bot",connector="_unknown",decision="DENY",outcome="refused"} 1`,
		`warden_calls_total{action="get",agent="bot",connector="up",decision="ALLOW",outcome="decided"} 1`,
		`warden_approvals_total{agent="bot",connector="up",result="requested"} 1`,
		`warden_approvals_total{agent="bot",connector="up",result="expired"} 1`,
		`warden_connector_errors_total{action="broken",connector="up"} 1`,
		`warden_connector_errors_total{action="open",connector="locked"} 1`,
		`warden_secret_resolution_failures_total{connector="locked"} 1`,
		`warden_reported_tokens_total{agent="bot"} 1200`,
		`warden_reported_cost_usd_total{agent="bot"} 0.03`,
		`warden_audit_queue_depth 0`,
	} {
		if !strings.Contains(text, s+"\n") {
			t.Errorf("/metrics lacks %s", s)
		}
	}
}

// splitLabels splits `a="x",b="y,z"` at the commas between labels.
func splitLabels(s string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// otlpReceiver is a local OTLP/HTTP trace receiver.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	posts int
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
			http.NotFound(w, req)
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var msg collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.posts++
		for _, rs := range msg.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *otlpReceiver) snapshot() ([]*tracepb.Span, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans), r.posts
}

func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// TestTracesExported runs warden with OTEL_EXPORTER_OTLP_ENDPOINT at a
// local receiver, makes calls carrying a W3C traceparent, and checks the
// span tree after shutdown (which flushes the exporter).
func TestTracesExported(t *testing.T) {
	recv := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "warden-test")
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	const parentID = "00f067aa0ba902b7"
	hdr := http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-01"}}

	t.Run("run", func(t *testing.T) { // warden stops (and flushes) when this ends
		rig := startTelemetryRig(t, time.Second)
		args := map[string]any{"id": "x1", "note": plantedSecret}
		if a := rig.call(t, "up", "get", args, hdr); a.Status != "succeeded" {
			t.Fatalf("get: %q", a.Status)
		}
		if a := rig.call(t, "up", "pay", args, hdr); a.Status != "pending" {
			t.Fatalf("pay: %q", a.Status)
		}
	})
	// After the pending call above was left waiting, warden stopped; the
	// exporter was flushed at shutdown.
	spans, _ := recv.snapshot()
	byID := map[string]*tracepb.Span{}
	for _, s := range spans {
		byID[fmt.Sprintf("%x", s.SpanId)] = s
		if got := fmt.Sprintf("%x", s.TraceId); got != traceID {
			t.Errorf("span %s in trace %s, want the agent's %s", s.Name, got, traceID)
		}
		for _, kv := range s.Attributes {
			if v := kv.Value.GetStringValue(); strings.Contains(v, plantedSecret) || strings.Contains(v, "wdn_") {
				t.Errorf("span %s attribute %s=%q leaks a secret or token", s.Name, kv.Key, v)
			}
		}
	}
	var calls []*tracepb.Span
	for _, s := range spans {
		if s.Name == "warden.call" {
			calls = append(calls, s)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("%d warden.call spans, want 2; spans: %v", len(calls), names(spans))
	}
	for _, c := range calls {
		if got := fmt.Sprintf("%x", c.ParentSpanId); got != parentID {
			t.Errorf("warden.call parent %s, want the agent's span %s", got, parentID)
		}
		if attr(c, "warden.agent") != "bot" || attr(c, "warden.connector") != "up" || attr(c, "warden.call_id") == "" || attr(c, "warden.config_version") == "" {
			t.Errorf("warden.call attributes incomplete: %v", c.Attributes)
		}
		children := map[string]int{}
		for _, s := range spans {
			if string(s.ParentSpanId) == string(c.SpanId) {
				children[s.Name]++
			}
		}
		want := map[string]int{"warden.decide": 1, "warden.audit": 1}
		switch attr(c, "warden.action") {
		case "get":
			want = map[string]int{"warden.decide": 1, "warden.audit": 2, "warden.connector": 1}
			if attr(c, "warden.outcome") != "succeeded" || attr(c, "warden.decision") != "ALLOW" {
				t.Errorf("get: decision/outcome %q/%q", attr(c, "warden.decision"), attr(c, "warden.outcome"))
			}
		case "pay":
			if attr(c, "warden.outcome") != "pending" {
				t.Errorf("pay: outcome %q", attr(c, "warden.outcome"))
			}
		}
		if fmt.Sprint(children) != fmt.Sprint(want) {
			t.Errorf("%s children %v, want %v", attr(c, "warden.action"), children, want)
		}
	}
}

func names(spans []*tracepb.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// TestTracesOffByDefault: without an OTLP endpoint or with
// OTEL_TRACES_EXPORTER=none, nothing is exported even to a listening
// receiver.
func TestTracesOffByDefault(t *testing.T) {
	recv := newOTLPReceiver(t)
	for _, env := range []map[string]string{
		{},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL, "OTEL_TRACES_EXPORTER": "none"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL, "OTEL_SDK_DISABLED": "true"},
	} {
		t.Run(fmt.Sprint(env), func(t *testing.T) {
			for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"} {
				t.Setenv(k, env[k])
			}
			t.Run("run", func(t *testing.T) {
				rig := startTelemetryRig(t, time.Minute)
				hdr := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
				if a := rig.call(t, "up", "get", map[string]any{"id": "x"}, hdr); a.Status != "succeeded" {
					t.Fatalf("get: %q", a.Status)
				}
			})
			if spans, posts := recv.snapshot(); posts != 0 || len(spans) != 0 {
				t.Errorf("%d exports with %d spans, want none", posts, len(spans))
			}
		})
	}
}
