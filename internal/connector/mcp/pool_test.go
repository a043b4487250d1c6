package mcp_test

// The pool's lifecycle against real upstream processes: this test binary,
// re-executed with upstreamEnv set, is an MCP server built with the
// official Go SDK over stdio (tools echo, env, pid, hang, crash). The
// Streamable HTTP side runs the same server in process behind httptest.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-dev/warden/internal/config"
	mcpconn "github.com/warden-dev/warden/internal/connector/mcp"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/secret"
)

const upstreamEnv = "WARDEN_MCP_TEST_UPSTREAM"

// spawnsEnv, if set, names a file each upstream process appends its pid to.
const spawnsEnv = "WARDEN_MCP_TEST_SPAWNS"

func TestMain(m *testing.M) {
	if os.Getenv(upstreamEnv) == "stdio" {
		if path := os.Getenv(spawnsEnv); path != "" {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err == nil {
				fmt.Fprintln(f, os.Getpid())
				f.Close()
			}
		}
		if err := upstreamServer(nil).Run(context.Background(), &sdk.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, "upstream:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type noArgs struct{}

type envArgs struct {
	Name string `json:"name"`
}

// upstreamServer is the test upstream; seen, if set, receives the HTTP
// headers of every tools/call.
func upstreamServer(seen func(http.Header)) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "test-upstream", Version: "1"}, nil)
	text := func(s string) *sdk.CallToolResult {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: s}}}
	}
	sdk.AddTool(s, &sdk.Tool{Name: "echo", Description: "echoes its message"}, func(_ context.Context, r *sdk.CallToolRequest, a struct {
		Message string `json:"message"`
	}) (*sdk.CallToolResult, any, error) {
		if seen != nil && r.Extra != nil {
			seen(r.Extra.Header)
		}
		return text(a.Message), nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "env", Description: "prints one environment variable"}, func(_ context.Context, _ *sdk.CallToolRequest, a envArgs) (*sdk.CallToolResult, any, error) {
		return text(a.Name + "=" + os.Getenv(a.Name)), nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "pid", Description: "its process id"}, func(context.Context, *sdk.CallToolRequest, noArgs) (*sdk.CallToolResult, any, error) {
		return text(strconv.Itoa(os.Getpid())), nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "hang", Description: "never answers"}, func(context.Context, *sdk.CallToolRequest, noArgs) (*sdk.CallToolResult, any, error) {
		select {}
	})
	sdk.AddTool(s, &sdk.Tool{Name: "crash", Description: "exits"}, func(context.Context, *sdk.CallToolRequest, noArgs) (*sdk.CallToolResult, any, error) {
		os.Exit(3)
		return nil, nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "fail", Description: "reports a tool error"}, func(context.Context, *sdk.CallToolRequest, noArgs) (*sdk.CallToolResult, any, error) {
		return nil, nil, errors.New("it went wrong")
	})
	return s
}

func self(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stdioConnector is an mcp connector whose upstream is this binary.
func stdioConnector(t *testing.T, name string, timeout time.Duration, env map[string]string, creds map[string]string) *config.Connector {
	e := map[string]string{upstreamEnv: "stdio"}
	for k, v := range env {
		e[k] = v
	}
	return &config.Connector{Name: name, Type: config.TypeMCP, Credentials: creds,
		MCP: &config.MCPConnector{Command: self(t), Env: e, Timeout: config.Duration(timeout)}}
}

func newExecutor(t *testing.T, pool *mcpconn.Pool, c *config.Connector, red *secret.Redactor) *mcpconn.Executor {
	t.Helper()
	res := secret.NewResolver(secret.ResolverOptions{Redactor: red})
	ex, err := mcpconn.NewExecutor(c, pool, res.Scope(c.Name, c.Credentials, time.Minute), red, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func run(t *testing.T, ex *mcpconn.Executor, tool string, args map[string]any) *dispatch.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ex.Execute(ctx, tool, args)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}

func text(t *testing.T, out *dispatch.Outcome) string {
	t.Helper()
	b, err := json.Marshal(out.Result)
	if err != nil {
		t.Fatal(err)
	}
	var r sdk.CallToolResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("result %s: %v", b, err)
	}
	var s strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			s.WriteString(tc.Text)
		}
	}
	return s.String()
}

func pid(t *testing.T, ex *mcpconn.Executor) int {
	t.Helper()
	out := run(t, ex, "pid", nil)
	if out.Failed {
		t.Fatalf("pid: %s (%s)", out.Error, out.Detail)
	}
	n, err := strconv.Atoi(text(t, out))
	if err != nil {
		t.Fatalf("pid: %v", err)
	}
	return n
}

// eventually returns the pid of the upstream once a call succeeds again:
// calls that race with an upstream's death fail fast; the next ones start a
// new process after the backoff.
func eventually(t *testing.T, ex *mcpconn.Executor) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := run(t, ex, "pid", nil)
		if !out.Failed {
			n, err := strconv.Atoi(text(t, out))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upstream did not come back: %s (%s)", out.Error, out.Detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gone waits until process p no longer exists.
func gone(t *testing.T, p int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(p, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPoolLifecycle(t *testing.T) {
	pool := mcpconn.NewPool(nil)
	defer pool.Close()
	red := secret.NewRedactor()
	ex := newExecutor(t, pool, stdioConnector(t, "up", 2*time.Second, nil, nil), red)

	// Started on first use, then reused.
	p1 := pid(t, ex)
	if p2 := pid(t, ex); p2 != p1 {
		t.Fatalf("second call ran in a new process (%d, then %d)", p1, p2)
	}
	if out := run(t, ex, "echo", map[string]any{"message": "hi"}); out.Failed || text(t, out) != "hi" {
		t.Fatalf("echo: %+v", out)
	}
	if out := run(t, ex, "fail", nil); !out.Failed || !strings.Contains(text(t, out), "it went wrong") {
		t.Errorf("a tool error is not a failed outcome with the upstream's result: %+v", out)
	}
	if out := run(t, ex, "no_such_tool", nil); !out.Failed || !strings.Contains(out.Error, "refused the call") {
		t.Errorf("unknown upstream tool: %+v", out)
	}

	// A reload that keeps the launch keeps the process.
	ex2 := newExecutor(t, pool, stdioConnector(t, "up", 2*time.Second, nil, nil), red)
	if p := pid(t, ex2); p != p1 {
		t.Fatalf("an identical launch started a new process (%d, was %d)", p, p1)
	}

	// Dies: restarted (after a short backoff) on the next call.
	if out := run(t, ex, "crash", nil); !out.Failed {
		t.Fatalf("crash: %+v", out)
	}
	gone(t, p1)
	p3 := eventually(t, ex)
	if p3 == p1 {
		t.Fatal("not restarted")
	}

	// Hangs: the call times out, the hung process is replaced.
	start := time.Now()
	out := run(t, ex, "hang", nil)
	if !out.Failed || !strings.Contains(out.Error, "did not answer in time") {
		t.Fatalf("hang: %+v", out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a hung upstream held the call %s", d)
	}
	gone(t, p3)
	p4 := eventually(t, ex)

	// A changed launch replaces the old upstream once it is idle.
	changed := newExecutor(t, pool, stdioConnector(t, "up", 3*time.Second, nil, nil), red)
	p5 := pid(t, changed)
	if p5 == p4 {
		t.Fatal("a changed launch reused the old process")
	}
	gone(t, p4)
	// A call still made under the older config version runs, in a process
	// of its own, and does not displace the newer upstream.
	if p := pid(t, ex); p == p5 {
		t.Error("an older launch's call ran in the newer launch's process")
	}
	if p := pid(t, changed); p != p5 {
		t.Errorf("the older launch's call displaced the newer upstream (%d, was %d)", p, p5)
	}

	// Shutdown stops every upstream; later calls fail without starting one.
	pool.Close()
	gone(t, p5)
	if out := run(t, changed, "pid", nil); !out.Failed || !strings.Contains(out.Error, "shutting down") {
		t.Errorf("call after Close: %+v", out)
	}
}

func TestExecutorCredentials(t *testing.T) {
	const value = "sk-test-9f8e7d6c5b4a39281706"
	t.Setenv("WARDEN_MCP_TEST_TOKEN", value)
	pool := mcpconn.NewPool(nil)
	defer pool.Close()
	red := secret.NewRedactor()
	c := stdioConnector(t, "creds", 10*time.Second, map[string]string{"API_TOKEN": "{credentials.token}"}, map[string]string{"token": "env://WARDEN_MCP_TEST_TOKEN"})
	ex := newExecutor(t, pool, c, red)
	out := run(t, ex, "env", map[string]any{"name": "API_TOKEN"})
	got := text(t, out)
	if out.Failed || !strings.HasPrefix(got, "API_TOKEN=") {
		t.Fatalf("env: %+v", out)
	}
	if strings.Contains(got, value) || !strings.Contains(got, "[REDACTED:") {
		t.Errorf("the credential came back unredacted: %q", got)
	}
	if len(out.CredentialsUsed) != 1 || out.CredentialsUsed[0] != "env://WARDEN_MCP_TEST_TOKEN" {
		t.Errorf("credentials used = %v", out.CredentialsUsed)
	}
	// warden's own environment is not passed on.
	if out := run(t, ex, "env", map[string]any{"name": "WARDEN_MCP_TEST_TOKEN"}); text(t, out) != "WARDEN_MCP_TEST_TOKEN=" {
		t.Errorf("warden's environment leaked into the upstream: %q", text(t, out))
	}

	// A credential that cannot be resolved: the upstream is not started.
	bad := stdioConnector(t, "bad-creds", 10*time.Second, map[string]string{"API_TOKEN": "{credentials.token}"}, map[string]string{"token": "env://WARDEN_MCP_TEST_UNSET"})
	out = run(t, newExecutor(t, pool, bad, red), "pid", nil)
	if !out.Failed || !out.CredentialFailed || !strings.Contains(out.Error, `credential "token"`) {
		t.Errorf("unresolvable credential: %+v", out)
	}
}

func TestExecutorStreamableHTTP(t *testing.T) {
	const value = "hdr-secret-0a1b2c3d4e5f60718293"
	t.Setenv("WARDEN_MCP_TEST_HEADER", value)
	var mu sync.Mutex
	var auth []string
	srv := upstreamServer(func(h http.Header) {
		mu.Lock()
		auth = append(auth, h.Get("Authorization"))
		mu.Unlock()
	})
	hs := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, nil))
	defer hs.Close()

	pool := mcpconn.NewPool(nil)
	defer pool.Close()
	red := secret.NewRedactor()
	c := &config.Connector{Name: "remote", Type: config.TypeMCP, Credentials: map[string]string{"token": "env://WARDEN_MCP_TEST_HEADER"},
		MCP: &config.MCPConnector{URL: hs.URL, Headers: map[string]string{"Authorization": "Bearer {credentials.token}"}}}
	ex := newExecutor(t, pool, c, red)
	out := run(t, ex, "echo", map[string]any{"message": "the token is " + value})
	if out.Failed {
		t.Fatalf("echo: %+v", out)
	}
	if got := text(t, out); strings.Contains(got, value) || !strings.Contains(got, "[REDACTED:") {
		t.Errorf("the header credential came back unredacted: %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) != 1 || auth[0] != "Bearer "+value {
		t.Errorf("the upstream saw Authorization %q, want the resolved credential", auth)
	}
	tools, err := ex.UpstreamTools(context.Background())
	if err != nil || len(tools) != 6 {
		t.Fatalf("upstream tools: %d, %v", len(tools), err)
	}
}
