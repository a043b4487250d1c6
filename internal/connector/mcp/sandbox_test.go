package mcp_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/config"
	mcpconn "github.com/warden-dev/warden/internal/connector/mcp"
	"github.com/warden-dev/warden/internal/sandbox"
	"github.com/warden-dev/warden/internal/secret"
)

// TestSandboxedUpstream runs the stdio upstream inside bubblewrap: it sees
// its own PID namespace and no file of the host but its binds.
func TestSandboxedUpstream(t *testing.T) {
	if err := sandbox.Available(); err != nil {
		t.Fatalf("the sandbox is unavailable (%v): run `make deps` (installs bubblewrap)", err)
	}
	// The upstream binary, where the sandbox's user can read and run it.
	dir, err := os.MkdirTemp("/var/tmp", "warden-mcp-sbx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "upstream")
	src, err := os.Open(self(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()

	pool := mcpconn.NewPool(nil)
	defer pool.Close()
	c := stdioConnector(t, "boxed", 20*time.Second, nil, nil)
	c.MCP.Command = bin
	binds := []string{dir}
	for _, b := range sandbox.DefaultBinds {
		if _, err := os.Lstat(b); err == nil {
			binds = append(binds, b)
		}
	}
	c.Sandbox = &config.Sandbox{Binds: binds}
	ex := newExecutor(t, pool, c, secret.NewRedactor())

	if p := pid(t, ex); p > 10 {
		t.Errorf("the upstream runs as pid %d: not in its own PID namespace", p)
	}
	if out := run(t, ex, "env", map[string]any{"name": upstreamEnv}); text(t, out) != upstreamEnv+"=stdio" {
		t.Errorf("the configured environment did not reach the sandboxed upstream: %q", text(t, out))
	}
	if out := run(t, ex, "env", map[string]any{"name": "HOME"}); strings.Contains(text(t, out), os.Getenv("HOME")) && os.Getenv("HOME") != "" {
		t.Errorf("the host's HOME reached the sandbox: %q", text(t, out))
	}
}
