package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/policy"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// TestToolNamesWithSeparator: with connectors x and x__y, "x__y__t" is
// listed once and runs x__y's t; x's action y__t, which would have the
// same name, is left out; names over maxToolName are left out; no name is
// ever listed twice.
func TestToolNamesWithSeparator(t *testing.T) {
	long := strings.Repeat("l", maxToolName-len("x__")+1)
	upstream := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"ran":%q}`, name+r.URL.Path)
		}))
		t.Cleanup(s.Close)
		return s
	}
	cfg, err := config.Parse([]config.File{{Name: "c.yaml", Data: []byte(`
kind: agent
name: bot
owner: a@example.com
permissions:
  x: {echo: on, y__t: on, ` + long + `: on}
  x__y: {t: on, u: ask}
---
kind: connector
name: x
type: http
base_url: http://127.0.0.1:1
actions:
  echo: {type: read}
  y__t: {type: read}
  ` + long + `: {type: read}
---
kind: connector
name: x__y
type: http
base_url: http://127.0.0.1:1
actions:
  t: {type: read}
  u: {type: write}
`)}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	snap := &dispatch.Snapshot{Engine: policy.New(cfg), Executors: map[string]dispatch.Executor{
		"x": httpExec{upstream("x").URL}, "x__y": httpExec{upstream("x__y").URL},
	}}
	d := dispatch.New(dispatch.Options{Store: st, Approvals: st}, snap)
	s := New(Options{Dispatcher: d, Wait: -1})
	p := call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "bot", TokenID: "t"}

	var skipped []string
	var names []string
	for _, tl := range permitted(snap, p, func(name, why string) { skipped = append(skipped, name) }) {
		names = append(names, toolName(tl.connector, tl.action))
	}
	if want := []string{"x__echo", "x__y__t", "x__y__u"}; !slices.Equal(names, want) {
		t.Errorf("permitted = %q, want %q", names, want)
	}
	slices.Sort(skipped)
	if want := []string{"x__" + long, "x__y__t"}; !slices.Equal(skipped, want) {
		t.Errorf("left out %q, want %q", skipped, want)
	}
	listed := s.listTools(context.Background(), p)
	seen := map[string]bool{}
	for _, tl := range listed.Tools {
		if seen[tl.Name] {
			t.Errorf("%s listed twice", tl.Name)
		}
		seen[tl.Name] = true
		if len(tl.Name) > maxToolName {
			t.Errorf("%s is longer than %d", tl.Name, maxToolName)
		}
	}
	if len(listed.Tools) != 3 {
		t.Errorf("listed %d tools, want 3", len(listed.Tools))
	}

	callTool := func(name string) *sdk.CallToolResult {
		return s.callTool(context.Background(), p, &sdk.CallToolRequest{Params: &sdk.CallToolParamsRaw{Name: name, Arguments: json.RawMessage(`{}`)}})
	}
	res := callTool("x__y__t")
	if res.IsError || res.StructuredContent == nil || res.StructuredContent.(map[string]any)["ran"] != "x__y/t" {
		b, _ := json.Marshal(res)
		t.Errorf("x__y__t did not run x__y's t: %s", b)
	}
	// A name not listed is still decided and refused, not run.
	if res := callTool("x__nope"); !res.IsError {
		t.Errorf("x__nope ran: %+v", res)
	}
}
