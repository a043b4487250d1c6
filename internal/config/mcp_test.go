package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
)

func TestMCPConnector(t *testing.T) {
	const doc = `
kind: agent
name: bot
owner: a@example.com
permissions:
  files: {read_text_file: on, list_directory: ask, "some.tool-v2": on}
---
kind: connector
name: files
type: mcp
command: npx
args: ["-y", "server", "/srv"]
env: {TOKEN: "pre-{credentials.t}-post", PLAIN: "x"}
credentials: {t: "env://T"}
timeout: 5s
actions:
  read_text_file: {type: read, description: "Read a file"}
---
kind: connector
name: remote
type: mcp
url: https://mcp.example.com/mcp
headers: {Authorization: "Bearer {credentials.t}"}
credentials: {t: "env://T"}
`
	cfg, err := config.Parse([]config.File{{Name: "c.yaml", Data: []byte(doc)}})
	if err != nil {
		t.Fatal(err)
	}
	files, remote := cfg.Connectors[0], cfg.Connectors[1]
	if files.MCP == nil || files.MCP.Command != "npx" || len(files.MCP.Args) != 3 || files.MCP.Env["TOKEN"] != "pre-{credentials.t}-post" ||
		time.Duration(files.MCP.Timeout) != 5*time.Second {
		t.Errorf("files.MCP = %+v", files.MCP)
	}
	if remote.MCP == nil || remote.MCP.URL != "https://mcp.example.com/mcp" || remote.MCP.Headers["Authorization"] != "Bearer {credentials.t}" || len(remote.Actions) != 0 {
		t.Errorf("remote = %+v, %+v", remote.MCP, remote.Actions)
	}
	for _, tc := range []struct {
		action string
		want   call.ActionType
	}{
		{"read_text_file", call.Read},
		{"list_directory", call.Unknown},
		{"anything_else", call.Unknown},
	} {
		if got, ok := files.ActionType(tc.action); !ok || got != tc.want {
			t.Errorf("ActionType(%q) = %q, %v; want %q", tc.action, got, ok, tc.want)
		}
	}
}

// TestMCPDocExample: the connector example in docs/mcp.md loads.
func TestMCPDocExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/mcp.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## The `mcp` connector")
	if !ok {
		t.Fatal("docs/mcp.md has no mcp connector section")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block in the mcp connector section")
	}
	if _, err := config.Parse([]config.File{{Name: "docs/mcp.md", Data: []byte(example)}}); err != nil {
		t.Errorf("the docs' mcp connector example does not load:\n%v", err)
	}
}
