package app_test

// MCP end to end: warden runs in-process through app.Run, its mcp
// connectors drive the real npm MCP servers pinned in e2e/package.json
// (server-filesystem, server-everything), and real clients drive warden:
// the official Go SDK client over Streamable HTTP (protocol 2025-11-25 and
// 2026-07-28) and over stdio through `warden mcp`, and the official
// Inspector CLI through `warden mcp`. The npm packages come from
// `make deps`; without them these tests fail, they never skip.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/app/apptest"
	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/call"
)

// mcpSecret is what the everything connector's credential resolves to; it
// must never reach a client.
const mcpSecret = "wdn-e2e-Upstream-Secret-7f3a9c21b4"

const mcpConfig = `
kind: agent
name: bot
owner: test@example.com
permissions:
  files: {read_text_file: on, list_directory: on, write_file: on, edit_file: off}
  everything: {echo: on, get-env: on, get-sum: ask}
  remote: {echo: on}
---
kind: agent
name: other
owner: test@example.com
permissions:
  files: {read_text_file: on}
---
kind: connector
name: files
type: mcp
description: a directory of test files
command: %[1]q
args: [%[2]q]
timeout: 20s
actions:
  read_text_file: {type: read}
  write_file: {type: write, description: "Write a file in the test directory"}
---
kind: connector
name: everything
type: mcp
command: %[3]q
args: [stdio]
credentials:
  api_key: env://WARDEN_MCP_E2E_SECRET
env:
  API_KEY: "{credentials.api_key}"
actions:
  get-env: {type: read}
  get-sum: {type: read}
---
kind: connector
name: remote
type: mcp
description: server-everything over Streamable HTTP
url: %[4]s
headers:
  Authorization: "Bearer {credentials.api_key}"
credentials:
  api_key: env://WARDEN_MCP_E2E_SECRET
actions:
  echo: {type: read}
---
kind: policy
name: files
rules:
  - name: read-only-files
    match: {connector: files, action_type: write}
    decision: DENY
    reason: the test directory is read-only for bots
`

// e2eBin returns the path of an npm binary of e2e/, failing (not
// skipping) when it is missing.
func e2eBin(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "e2e", "node_modules", ".bin", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing (%v): run `make deps` (npm ci in e2e/) to install the pinned MCP servers and Inspector", name, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not on PATH: install Node.js 20, then run `make deps`")
	}
	return p
}

type mcpEnv struct {
	t        *testing.T
	url      string
	cfgDir   string
	dataDir  string
	agent    string // bot's token
	other    string // other's token
	approver string
	auditor  string
	reload   chan struct{}
	cfgArgs  []any
}

func mcpSetup(t *testing.T) *mcpEnv {
	t.Helper()
	fsBin, evBin := e2eBin(t, "mcp-server-filesystem"), e2eBin(t, "mcp-server-everything")
	t.Setenv("WARDEN_MCP_E2E_SECRET", mcpSecret)
	dir := t.TempDir()
	e := &mcpEnv{t: t, cfgDir: filepath.Join(dir, "warden.d"), dataDir: filepath.Join(dir, "data"), reload: make(chan struct{}, 1)}
	for _, d := range []string{e.cfgDir, e.dataDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// server-filesystem resolves symlinks in its allowed directories.
	real, err := filepath.EvalSymlinks(e.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	e.dataDir = real
	if err := os.WriteFile(filepath.Join(e.dataDir, "hello.txt"), []byte("hello from the test tree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.cfgArgs = []any{fsBin, e.dataDir, evBin, startHTTPUpstream(t, evBin)}
	e.writeConfig(mcpConfig)
	db := filepath.Join(dir, "warden.db")

	e.url = apptest.Start(t, app.Options{
		ConfigDir: e.cfgDir, DB: db, Grace: 5 * time.Second,
		ConfigSource: app.SourceFile, ConfigPoll: -1, Reload: e.reload, MCPWait: 30 * time.Second,
	}).URL

	st, err := app.OpenStore(context.Background(), db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mk := func(p call.Principal) string {
		var tok string
		var err error
		if p.Role == call.RoleApprover {
			tok, _, err = st.CreateApproverToken(context.Background(), p, approval.Scope{})
		} else {
			tok, _, err = st.CreateToken(context.Background(), p)
		}
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	e.agent = mk(call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "bot"})
	e.other = mk(call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "other"})
	e.approver = mk(call.Principal{Role: call.RoleApprover, Tenant: call.DefaultTenant, Name: "alice"})
	e.auditor = mk(call.Principal{Role: call.RoleAuditor, Name: "audra"})
	return e
}

func (e *mcpEnv) writeConfig(tmpl string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.cfgDir, "c.yaml"), []byte(fmt.Sprintf(tmpl, e.cfgArgs...)), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// bearer adds an agent's token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// connect opens an MCP session to warden's /mcp as the agent with token,
// speaking protocol version.
func (e *mcpEnv) connect(token, version string, opts *sdk.ClientOptions) *sdk.ClientSession {
	e.t.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "e2e", Version: "1"}, opts)
	tr := &sdk.StreamableClientTransport{Endpoint: e.url + "/mcp", HTTPClient: &http.Client{Transport: bearer{token, http.DefaultTransport}}, MaxRetries: -1}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		e.t.Fatalf("connect (%s): %v", version, err)
	}
	e.t.Cleanup(func() { s.Close() })
	if got := s.InitializeResult().ProtocolVersion; got != version {
		e.t.Fatalf("negotiated protocol version %q, want %q", got, version)
	}
	return s
}

func toolNames(t *testing.T, s *sdk.ClientSession) ([]string, map[string]*sdk.Tool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	byName := map[string]*sdk.Tool{}
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
		byName[tl.Name] = tl
	}
	slices.Sort(names)
	return names, byName
}

func callTool(t *testing.T, s *sdk.ClientSession, name string, args map[string]any) (*sdk.CallToolResult, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := s.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	return res, resultText(res)
}

func resultText(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
			b.WriteString("\n")
		}
	}
	return b.String()
}

// api sends a JSON request to warden's REST API.
func (e *mcpEnv) api(method, path, token string, body any) (int, map[string]any) {
	e.t.Helper()
	return mustDo(e.t, e.url, method, path, token, body)
}

var botTools = []string{
	"everything__echo", "everything__get-env", "everything__get-sum",
	"files__list_directory", "files__read_text_file", "files__write_file",
	"remote__echo",
}

func TestMCPEndToEnd(t *testing.T) {
	e := mcpSetup(t)
	v1 := e.connect(e.agent, "2025-11-25", nil)
	progress := make(chan *sdk.ProgressNotificationParams, 16)
	v2 := e.connect(e.agent, "2026-07-28", &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) {
			select {
			case progress <- r.Params:
			default:
			}
		},
	})
	sessions := map[string]*sdk.ClientSession{"2025-11-25": v1, "2026-07-28": v2}

	t.Run("tools/list shows exactly the permitted tools", func(t *testing.T) {
		for version, s := range sessions {
			names, byName := toolNames(t, s)
			if !slices.Equal(names, botTools) {
				t.Errorf("%s: tools = %v, want %v", version, names, botTools)
				continue
			}
			if d := byName["everything__get-sum"].Description; !strings.Contains(d, "needs human approval") {
				t.Errorf("%s: an ask tool's description %q does not say it needs approval", version, d)
			}
			if d := byName["files__read_text_file"].Description; strings.Contains(d, "approval") {
				t.Errorf("%s: an on tool's description %q mentions approval", version, d)
			}
			if d := byName["files__write_file"].Description; d != "Write a file in the test directory" {
				t.Errorf("%s: declared description not used: %q", version, d)
			}
			schema, _ := json.Marshal(byName["files__read_text_file"].InputSchema)
			if !strings.Contains(string(schema), `"path"`) {
				t.Errorf("%s: read_text_file's schema is not the upstream's: %s", version, schema)
			}
		}
		other := e.connect(e.other, "2025-11-25", nil)
		if names, _ := toolNames(t, other); !slices.Equal(names, []string{"files__read_text_file"}) {
			t.Errorf("other agent: tools = %v, want [files__read_text_file]", names)
		}
	})

	t.Run("an allowed read works", func(t *testing.T) {
		for version, s := range sessions {
			res, text := callTool(t, s, "files__read_text_file", map[string]any{"path": filepath.Join(e.dataDir, "hello.txt")})
			if res.IsError || !strings.Contains(text, "hello from the test tree") {
				t.Errorf("%s: read: isError=%v text=%q", version, res.IsError, text)
			}
		}
		res, text := callTool(t, v1, "everything__echo", map[string]any{"message": "ping-42"})
		if res.IsError || !strings.Contains(text, "ping-42") {
			t.Errorf("echo: isError=%v text=%q", res.IsError, text)
		}
		// An upstream over Streamable HTTP, with a credential in its headers.
		res, text = callTool(t, v2, "remote__echo", map[string]any{"message": "over-http"})
		if res.IsError || !strings.Contains(text, "over-http") {
			t.Errorf("remote echo: isError=%v text=%q", res.IsError, text)
		}
	})

	t.Run("a denied write is refused with the reason and the file is untouched", func(t *testing.T) {
		target := filepath.Join(e.dataDir, "hello.txt")
		for version, s := range sessions {
			res, text := callTool(t, s, "files__write_file", map[string]any{"path": target, "content": "overwritten"})
			if !res.IsError || !strings.Contains(text, "the test directory is read-only for bots") || !strings.Contains(text, "denied") {
				t.Errorf("%s: write: isError=%v text=%q, want a denial with the rule's reason", version, res.IsError, text)
			}
		}
		if b, _ := os.ReadFile(target); string(b) != "hello from the test tree\n" {
			t.Errorf("the file changed: %q", b)
		}
		// Off and unknown tools are refused (and audited) too.
		for _, name := range []string{"files__edit_file", "files__no_such_tool", "nope__x", "garbage"} {
			res, text := callTool(t, v1, name, map[string]any{"path": target})
			if !res.IsError {
				t.Errorf("%s: not refused: %q", name, text)
			}
		}
	})

	t.Run("an ask tool waits and completes after approval", func(t *testing.T) {
		type out struct {
			res *sdk.CallToolResult
			err error
		}
		got := make(chan out, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			p := &sdk.CallToolParams{Name: "everything__get-sum", Arguments: map[string]any{"a": 19, "b": 23}}
			p.SetProgressToken("sum-1")
			res, err := v2.CallTool(ctx, p)
			got <- out{res, err}
		}()
		// The client hears that its call waits before anyone approves.
		select {
		case p := <-progress:
			if p.ProgressToken != "sum-1" || !strings.Contains(p.Message, "approval") {
				t.Errorf("progress = %+v", p)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no progress notification while waiting for approval")
		}
		code, m := e.api("GET", "/v1/approvals?status=pending", e.approver, nil)
		list, _ := m["approvals"].([]any)
		if code != 200 || len(list) != 1 {
			t.Fatalf("pending approvals: %d %v", code, m)
		}
		a := list[0].(map[string]any)
		if a["connector"] != "everything" || a["action"] != "get-sum" {
			t.Fatalf("pending approval is for %v.%v", a["connector"], a["action"])
		}
		if code, m := e.api("POST", "/v1/approvals/"+a["id"].(string)+"/approve", e.approver, map[string]any{"comment": "ok"}); code != 200 {
			t.Fatalf("approve: %d %v", code, m)
		}
		select {
		case o := <-got:
			if o.err != nil {
				t.Fatalf("tools/call: %v", o.err)
			}
			if text := resultText(o.res); o.res.IsError || !strings.Contains(text, "42") {
				t.Errorf("after approval: isError=%v text=%q, want the sum 42", o.res.IsError, text)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the call did not complete after approval")
		}
	})

	t.Run("a secret in the upstream's environment never reaches the client", func(t *testing.T) {
		res, text := callTool(t, v1, "everything__get-env", nil)
		if res.IsError {
			t.Fatalf("get-env: %q", text)
		}
		if !strings.Contains(text, "API_KEY") {
			t.Fatalf("the upstream did not get API_KEY in its environment: %q", text)
		}
		all, _ := json.Marshal(res)
		if strings.Contains(string(all), mcpSecret) || strings.Contains(text, mcpSecret[4:20]) {
			t.Fatalf("the secret reached the client: %s", all)
		}
		// Nor does warden's own environment leak into the upstream's.
		if strings.Contains(text, "WARDEN_MCP_E2E_SECRET") {
			t.Errorf("warden's environment was passed to the upstream: %q", text)
		}
	})

	t.Run("every call is audited with front_end mcp", func(t *testing.T) {
		code, m := e.api("GET", "/v1/audit?agent=bot&limit=1000", e.auditor, nil)
		recs, _ := m["records"].([]any)
		if code != 200 || len(recs) == 0 {
			t.Fatalf("audit: %d %v", code, m)
		}
		seen := map[string]bool{}
		for _, r := range recs {
			rec := r.(map[string]any)
			if rec["front_end"] != "mcp" {
				t.Errorf("record %v has front_end %v", rec["seq"], rec["front_end"])
			}
			seen[fmt.Sprint(rec["connector"], ".", rec["action"], ":", rec["decision"])] = true
			b, _ := json.Marshal(rec)
			if strings.Contains(string(b), mcpSecret) {
				t.Errorf("the secret is in the audit trail: %s", b)
			}
		}
		for _, want := range []string{
			"files.read_text_file:ALLOW", "files.write_file:DENY", "files.edit_file:DENY",
			"everything.get-sum:REQUIRE_APPROVAL", "everything.get-env:ALLOW", "everything.echo:ALLOW",
		} {
			if !seen[want] {
				t.Errorf("no audit record %s (have %v)", want, seen)
			}
		}
	})

	t.Run("the tool list follows a config reload", func(t *testing.T) {
		e.writeConfig(strings.Replace(mcpConfig, "everything: {echo: on, get-env: on, get-sum: ask}", "everything: {echo: on, get-sum: off}", 1))
		e.reload <- struct{}{}
		want := []string{"everything__echo", "files__list_directory", "files__read_text_file", "files__write_file", "remote__echo"}
		deadline := time.Now().Add(10 * time.Second)
		for {
			names, _ := toolNames(t, v2)
			if slices.Equal(names, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after reload: tools = %v, want %v", names, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		res, text := callTool(t, v1, "everything__get-env", nil)
		if !res.IsError || !strings.Contains(text, "denied") {
			t.Errorf("a tool removed by the reload still runs: %q", text)
		}
		// The upstream kept running across the reload (same launch).
		if res, text := callTool(t, v1, "everything__echo", map[string]any{"message": "after"}); res.IsError {
			t.Errorf("echo after reload: %q", text)
		}
		e.writeConfig(mcpConfig)
		e.reload <- struct{}{}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if names, _ := toolNames(t, v2); slices.Equal(names, botTools) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the restored config did not come back")
			}
		}
	})

	t.Run("/mcp needs an agent token", func(t *testing.T) {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
		for _, tok := range []string{"", "wdn_not-a-token", e.approver} {
			req, _ := http.NewRequest("POST", e.url+"/mcp", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 && resp.StatusCode != 403 {
				t.Errorf("token %.8q: status %d, want 401 or 403", tok, resp.StatusCode)
			}
		}
	})

	t.Run("stdio: the Go SDK client through warden mcp", func(t *testing.T) {
		cmd := wardenMCP(e, "bot", e.agent)
		c := sdk.NewClient(&sdk.Implementation{Name: "e2e-stdio", Version: "1"}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for _, version := range []string{"2025-11-25", "2026-07-28"} {
			s, err := c.Connect(ctx, &sdk.CommandTransport{Command: cmd()}, &sdk.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatalf("%s: connect through warden mcp: %v", version, err)
			}
			if got := s.InitializeResult().ProtocolVersion; got != version {
				t.Errorf("through warden mcp: negotiated %q, want %q", got, version)
			}
			names, _ := toolNames(t, s)
			if !slices.Equal(names, botTools) {
				t.Errorf("%s: tools = %v, want %v", version, names, botTools)
			}
			res, text := callTool(t, s, "files__read_text_file", map[string]any{"path": filepath.Join(e.dataDir, "hello.txt")})
			if res.IsError || !strings.Contains(text, "hello from the test tree") {
				t.Errorf("%s: read: %q", version, text)
			}
			res, text = callTool(t, s, "files__write_file", map[string]any{"path": filepath.Join(e.dataDir, "x.txt"), "content": "x"})
			if !res.IsError || !strings.Contains(text, "read-only for bots") {
				t.Errorf("%s: write: %q", version, text)
			}
			s.Close()
		}
		// A token of another agent than --agent is refused.
		s, err := c.Connect(ctx, &sdk.CommandTransport{Command: wardenMCP(e, "bot", e.other)()}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err == nil {
			s.Close()
			t.Fatal("warden mcp --agent bot with other's token connected")
		}
		if !strings.Contains(err.Error(), "not the token of the agent") {
			t.Errorf("wrong agent: %v", err)
		}
	})

	t.Run("stdio: the Inspector CLI through warden mcp", func(t *testing.T) {
		insp := e2eBin(t, "mcp-inspector")
		run := func(args ...string) string {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			self, _ := os.Executable()
			// The Inspector has a --server flag of its own: warden's URL
			// goes in WARDEN_URL.
			full := append([]string{"--cli", self, "mcp", "--agent", "bot"}, args...)
			cmd := exec.CommandContext(ctx, insp, full...)
			cmd.Env = append(os.Environ(), execEnv+"=1", "WARDEN_TOKEN="+e.agent, "WARDEN_URL="+e.url)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("mcp-inspector %v: %v\n%s", args, err, out)
			}
			return string(out)
		}
		out := run("--method", "tools/list")
		var list struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("inspector tools/list output is not JSON: %v\n%s", err, out)
		}
		var names []string
		for _, tl := range list.Tools {
			names = append(names, tl.Name)
		}
		slices.Sort(names)
		if !slices.Equal(names, botTools) {
			t.Errorf("inspector: tools = %v, want %v", names, botTools)
		}
		out = run("--method", "tools/call", "--tool-name", "files__read_text_file", "--tool-arg", "path="+filepath.Join(e.dataDir, "hello.txt"))
		if !strings.Contains(out, "hello from the test tree") {
			t.Errorf("inspector read: %s", out)
		}
		out = run("--method", "tools/call", "--tool-name", "everything__get-env")
		if strings.Contains(out, mcpSecret) || !strings.Contains(out, "API_KEY") {
			t.Errorf("inspector get-env: the secret leaked or API_KEY is missing:\n%s", out)
		}
		out = run("--method", "tools/call", "--tool-name", "files__write_file", "--tool-arg", "path="+filepath.Join(e.dataDir, "y.txt"), "content=y")
		if !strings.Contains(out, "read-only for bots") || !strings.Contains(out, `"isError": true`) {
			t.Errorf("inspector write: %s", out)
		}
		if _, err := os.Stat(filepath.Join(e.dataDir, "y.txt")); err == nil {
			t.Error("the denied write created the file")
		}
	})
}

// startHTTPUpstream runs server-everything over Streamable HTTP on a free
// port and returns its /mcp URL once it listens.
func startHTTPUpstream(t *testing.T, bin string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	cmd := exec.Command(bin, "streamableHttp")
	cmd.Env = append(os.Environ(), "PORT="+port)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr + "/mcp"
		}
		if time.Now().After(deadline) {
			t.Fatal("server-everything (streamableHttp) did not listen within 20s")
		}
	}
}

// wardenMCP returns a command factory for `warden mcp --agent agent` as
// this test binary (TestMain runs the CLI when execEnv is set).
func wardenMCP(e *mcpEnv, agent, token string) func() *exec.Cmd {
	return func() *exec.Cmd {
		self, err := os.Executable()
		if err != nil {
			e.t.Fatal(err)
		}
		cmd := exec.Command(self, "mcp", "--agent", agent, "--server", e.url)
		cmd.Env = append(os.Environ(), execEnv+"=1", "WARDEN_TOKEN="+token)
		var mu sync.Mutex
		var stderr bytes.Buffer
		cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return stderr.Write(p) })
		return cmd
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// mcpNamesConfig has connectors x and x__y, both server-everything with a
// marker in their environment: "x__y__get-env" must run x__y's get-env.
const mcpNamesConfig = `
kind: agent
name: bot
owner: test@example.com
permissions:
  x: {echo: on}
  x__y: {get-env: on}
---
kind: connector
name: x
type: mcp
command: %[3]q
args: [stdio]
env:
  WARDEN_E2E_MARK: %[5]s-x
---
kind: connector
name: x__y
type: mcp
command: %[3]q
args: [stdio]
env:
  WARDEN_E2E_MARK: %[5]s-x__y
`

// marked returns the pids of the processes whose environment holds
// WARDEN_E2E_MARK=mark.
func marked(mark string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && slices.Contains(strings.Split(string(env), "\x00"), "WARDEN_E2E_MARK="+mark) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestMCPNamesAndRetirement: with connectors x and x__y, the tool
// x__y__get-env is listed and runs on x__y; once a reload removes x__y
// from the config, its upstream process exits (it held the environment it
// was started with) while x's keeps running.
func TestMCPNamesAndRetirement(t *testing.T) {
	e := mcpSetup(t)
	mark := fmt.Sprintf("names-%d", time.Now().UnixNano())
	e.cfgArgs = append(e.cfgArgs, mark)
	e.writeConfig(mcpNamesConfig)
	e.reload <- struct{}{}
	s := e.connect(e.agent, "2025-11-25", nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		names, _ := toolNames(t, s)
		if slices.Equal(names, []string{"x__echo", "x__y__get-env"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tools after the reload: %q, want x__echo and x__y__get-env", names)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res, text := callTool(t, s, "x__y__get-env", nil)
	if res.IsError || !strings.Contains(text, mark+"-x__y") {
		t.Fatalf("x__y__get-env did not run on x__y: %q", text)
	}
	if res, text := callTool(t, s, "x__echo", map[string]any{"message": "hi"}); res.IsError || !strings.Contains(text, "hi") {
		t.Fatalf("x__echo: %q", text)
	}
	xy, x := marked(mark+"-x__y"), marked(mark+"-x")
	if len(xy) == 0 || len(x) == 0 {
		t.Fatalf("upstream processes: x__y %v, x %v", xy, x)
	}

	// x__y leaves the config: its upstream stops.
	e.writeConfig(strings.Replace(strings.Split(mcpNamesConfig, "---\nkind: connector\nname: x__y")[0], "  x__y: {get-env: on}\n", "", 1))
	e.reload <- struct{}{}
	deadline = time.Now().Add(10 * time.Second)
	for len(marked(mark+"-x__y")) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the upstream of removed connector x__y still runs: %v", marked(mark+"-x__y"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := marked(mark + "-x"); !slices.Equal(got, x) {
		t.Errorf("x's upstream changed across the reload (%v, was %v)", got, x)
	}
	if res, text := callTool(t, s, "x__echo", map[string]any{"message": "still"}); res.IsError || !strings.Contains(text, "still") {
		t.Errorf("x__echo after the reload: %q", text)
	}
}
