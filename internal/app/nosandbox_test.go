package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/app/apptest"
)

// TestServeRefusesWhatItCannotSandbox: on a machine without bubblewrap, a
// config with an exec connector, or an mcp server with a sandbox: block,
// does not load — warden says so at start rather than at the first call,
// and never runs either unsandboxed.
func TestServeRefusesWhatItCannotSandbox(t *testing.T) {
	for name, cfg := range map[string]string{
		"exec": `
kind: connector
name: tools
type: exec
actions: {hello: {type: read, command: [echo, hi]}}
`,
		"sandboxed mcp": `
kind: connector
name: files
type: mcp
command: node
args: [server.js]
sandbox: {limits: {timeout: 5s}}
`,
	} {
		t.Run(name, func(t *testing.T) {
			cfgDir, db := apptest.Config(t, cfg)
			t.Setenv("PATH", t.TempDir()) // no bwrap to be found
			// A server that starts anyway serves until this ends, then returns nil.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := app.Run(ctx, app.Options{ConfigDir: cfgDir, DB: db, Addr: "127.0.0.1:0"})
			if err == nil || !strings.Contains(err.Error(), "bubblewrap") {
				t.Fatalf("Run = %v; want a refusal naming bubblewrap", err)
			}
		})
	}
}
