package exec_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/config"
	execconn "github.com/warden-dev/warden/internal/connector/exec"
	"github.com/warden-dev/warden/internal/connector/template"
	"github.com/warden-dev/warden/internal/sandbox"
	"github.com/warden-dev/warden/internal/sandbox/egress"
	"github.com/warden-dev/warden/internal/secret"
)

func need(t *testing.T) {
	t.Helper()
	if err := sandbox.Available(); err != nil {
		t.Fatalf("%v (run `make deps`, which installs bubblewrap)", err)
	}
}

func connector(t *testing.T, doc string, o execconn.Options) *execconn.Connector {
	t.Helper()
	need(t)
	cfg, err := config.Parse([]config.File{{Name: "c.yaml", Data: []byte(doc)}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := execconn.New(cfg.Connectors[0], o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const tools = `kind: connector
name: tools
type: exec
credentials: {token: env://TOOLS_TOKEN}
sandbox: {limits: {timeout: 20s}}
actions:
  args: {type: read, command: [printf, "%s|", "{args.a}", "{args.b}"]}
  shell: {type: execute, shell: true, command: ["printf '%s|' {args.a} done"]}
  secret: {type: read, command: [sh, -c, "echo $TOKEN; printf %s \"$TOKEN\" | base64; echo $TOKEN >&2"], env: {TOKEN: "{credentials.token}"}}
  fail: {type: execute, command: [sh, -c, "echo bad >&2; exit 3"]}
  slow: {type: execute, command: [sh, -c, "sleep 60 & wait"], limits: {timeout: 300ms}}
  loud: {type: read, command: [sh, -c, "yes | head -c 100000"], limits: {output: 64}}
`

func TestArgvNeverSplitsOrInjects(t *testing.T) {
	c := connector(t, tools, execconn.Options{})
	hostile := `x; echo pwned $(id) "' ` + "`id`"
	res, err := c.Execute(context.Background(), "args", map[string]any{"a": hostile, "b": "two words"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := hostile + "|two words|"; res.Stdout != want || res.ExitCode != 0 {
		t.Fatalf("stdout %q, want %q (stderr %q)", res.Stdout, want, res.Stderr)
	}
	res, err = c.Execute(context.Background(), "shell", map[string]any{"a": hostile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := hostile + "|done|"; res.Stdout != want {
		t.Fatalf("shell: stdout %q, want %q (stderr %q)", res.Stdout, want, res.Stderr)
	}
}

func TestSecretInjectedAndRedacted(t *testing.T) {
	const value = "tok-9f8e7d6c5b4a39281706"
	r := secret.NewRedactor()
	r.Add("token", secret.NewValue(value))
	c := connector(t, tools, execconn.Options{Redact: r.RedactBytes})
	var asked []string
	cred := func(name string) (string, error) { asked = append(asked, name); return value, nil }
	res, err := c.Execute(context.Background(), "secret", nil, cred)
	if err != nil {
		t.Fatal(err)
	}
	all := res.Stdout + res.Stderr
	b64 := base64.StdEncoding.EncodeToString([]byte(value))
	if strings.Contains(all, value) || strings.Contains(all, b64[:20]) {
		t.Fatalf("secret leaked: %q", all)
	}
	if !strings.Contains(res.Stdout, "[REDACTED:token]") || !strings.Contains(res.Stderr, "[REDACTED:token]") {
		t.Fatalf("the command did not see the secret: stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	if len(asked) != 1 || asked[0] != "token" {
		t.Errorf("credentials asked: %v", asked)
	}
}

func TestOutcomes(t *testing.T) {
	c := connector(t, tools, execconn.Options{})
	ctx := context.Background()
	res, err := c.Execute(ctx, "fail", nil, nil)
	if err != nil || res.ExitCode != 3 || res.Failure() != "command exited with status 3" || res.Stderr != "bad\n" {
		t.Fatalf("fail: %+v %v", res, err)
	}
	res, err = c.Execute(ctx, "slow", nil, nil)
	if err != nil || !res.Killed || res.KillReason != "timeout" || !strings.Contains(res.Failure(), "time limit") {
		t.Fatalf("slow: %+v %v", res, err)
	}
	res, err = c.Execute(ctx, "loud", nil, nil)
	if err != nil || !res.Truncated || len(res.Stdout) != 64+len(sandbox.TruncationMarker) || res.Failure() != "" {
		t.Fatalf("loud: %+v %v", res, err)
	}
	_, err = c.Execute(ctx, "args", map[string]any{"a": "x"}, nil)
	var argErr *template.ArgError
	if !errors.As(err, &argErr) || argErr.Path != "args.b" {
		t.Fatalf("missing arg: %v", err)
	}
	_, err = c.Execute(ctx, "args", map[string]any{"a": "x\x00y", "b": "z"}, nil)
	if !errors.Is(err, execconn.ErrUnsafeValue) {
		t.Fatalf("NUL: %v", err)
	}
	if _, err := c.Execute(ctx, "nope", nil, nil); err == nil {
		t.Fatal("unknown action ran")
	}
}

func TestRefusesWithoutBubblewrap(t *testing.T) {
	c := connector(t, tools, execconn.Options{})
	t.Setenv("PATH", t.TempDir())
	if _, err := c.Execute(context.Background(), "fail", nil, nil); !errors.Is(err, sandbox.ErrNoBubblewrap) {
		t.Fatalf("got %v, want ErrNoBubblewrap", err)
	}
}

func TestEgress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api says hi") }))
	defer srv.Close()
	sa := netip.MustParseAddrPort(srv.Listener.Addr().String())
	doc := fmt.Sprintf(`kind: connector
name: net
type: exec
egress: ["api.test:%d"]
actions:
  fetch: {type: network, command: [curl, -sS, -p, --max-time, "5", "{args.url}"]}
`, sa.Port())
	var audited []egress.Attempt
	c := connector(t, doc, execconn.Options{
		Resolver:  resolver{"api.test": sa.Addr(), "other.test": sa.Addr()},
		AllowAddr: func(a netip.Addr) bool { return a == sa.Addr() || !egress.Blocked(a) },
		Audit: func(_ context.Context, action string, a egress.Attempt) error {
			if action == "fetch" {
				audited = append(audited, a)
			}
			return nil
		},
	})
	res, err := c.Execute(context.Background(), "fetch", map[string]any{"url": fmt.Sprintf("http://api.test:%d/", sa.Port())}, nil)
	if err != nil || res.Stdout != "api says hi" || len(res.Egress) != 1 || !res.Egress[0].Allowed {
		t.Fatalf("allowed: %+v %v", res, err)
	}
	res, err = c.Execute(context.Background(), "fetch", map[string]any{"url": fmt.Sprintf("http://other.test:%d/", sa.Port())}, nil)
	if err != nil || strings.Contains(res.Stdout, "hi") || res.ExitCode == 0 || len(res.Egress) != 1 || res.Egress[0].Allowed {
		t.Fatalf("refused: %+v %v", res, err)
	}
	if len(audited) != 2 {
		t.Errorf("audited %+v", audited)
	}
}

type resolver map[string]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, errors.New("no such host")
}
