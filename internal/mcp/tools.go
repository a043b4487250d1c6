package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/dispatch"
)

// separator joins a connector and an action into a tool name:
// "github__create_pr". Both parts may hold [A-Za-z0-9_.-]; a connector
// whose name holds ':' is not shown over MCP.
const separator = "__"

// maxToolName is the longest tool name listed (what MCP clients commonly
// accept); a permission whose name would be longer is not listed.
const maxToolName = 128

// toolName is the MCP tool name of a connector's action.
func toolName(connector, action string) string { return connector + separator + action }

// parseToolName splits a tool name into connector and action. A connector
// name may itself contain the separator, so every split is tried, the
// longest known connector first: with connectors x and x__y, "x__y__t" is
// x__y's action t. (x's action y__t would have the same name; it is not
// listed.)
func parseToolName(name string, isConnector func(string) bool) (connector, action string, ok bool) {
	if len(name) > 512 {
		return "", "", false
	}
	for j := len(name) - len(separator); j > 0; j-- {
		if name[j:j+len(separator)] != separator {
			continue
		}
		c, a := name[:j], name[j+len(separator):]
		if a != "" && isConnector(c) {
			return c, a, true
		}
	}
	return "", "", false
}

// UpstreamTools is what an executor that fronts an MCP server offers: the
// upstream's tools, for names, descriptions and input schemas of actions
// the config does not declare. Checked at run time on the snapshot's
// executors.
type UpstreamTools interface {
	UpstreamTools(ctx context.Context) ([]*sdk.Tool, error)
}

// listWait bounds how long tools/list waits for an upstream's own list.
const listWait = 5 * time.Second

// approvalNote ends the description of an `ask` tool.
const approvalNote = " [warden: needs human approval; the call waits for an approver and may answer that it is still pending]"

// permissiveSchema is an input schema that accepts any arguments object.
var permissiveSchema = map[string]any{"type": "object"}

// tool is one tool an agent may see.
type tool struct {
	connector, action string
	mode              config.Mode
}

// isConnector reports whether snap's config has a connector named c.
func isConnector(snap *dispatch.Snapshot) func(string) bool {
	return func(c string) bool {
		_, ok := snap.Engine.Connector(c)
		return ok
	}
}

// permitted lists the tools p may see under snap: every on/ask permission
// of a connector warden executes, sorted by name. Connectors it only
// decides for (claude-code, types without an executor) are left out: a
// call to them could not run. So is a tool whose name is longer than
// maxToolName, or does not parse back to its own connector and action
// (x's action y__t when there is a connector x__y): each listed name means
// exactly one action, the one parseToolName finds (so no two permissions
// share a listed name). skip, if set, hears of each tool left out for its
// name.
func permitted(snap *dispatch.Snapshot, p call.Principal, skip func(name, why string)) []tool {
	a, ok := snap.Engine.Agent(p.Tenant, p.Agent)
	if !ok {
		return nil
	}
	var out []tool
	for cname, actions := range a.Permissions {
		if _, ok := snap.Executors[cname]; !ok || !config.ValidToolName(cname) {
			continue
		}
		for aname, mode := range actions {
			if mode == config.Off || !config.ValidToolName(aname) {
				continue
			}
			out = append(out, tool{connector: cname, action: aname, mode: mode})
		}
	}
	slices.SortFunc(out, func(x, y tool) int {
		return strings.Compare(toolName(x.connector, x.action), toolName(y.connector, y.action))
	})
	if skip == nil {
		skip = func(string, string) {}
	}
	is := isConnector(snap)
	kept := out[:0]
	for _, t := range out {
		name := toolName(t.connector, t.action)
		if len(name) > maxToolName {
			skip(name, fmt.Sprintf("longer than %d characters", maxToolName))
			continue
		}
		if c, a, ok := parseToolName(name, is); !ok || c != t.connector || a != t.action {
			skip(name, fmt.Sprintf("the name is %s's action %s", c, a))
			continue
		}
		kept = append(kept, t)
	}
	return kept
}

// skipped logs, once per name and reason, a tool left out of the list.
func (s *Server) skipped(name, why string) {
	if _, dup := s.skips.LoadOrStore(name+"\x00"+why, true); dup {
		return
	}
	s.log.Debug("mcp: a permitted tool is not shown over MCP", "tool", name, "why", why)
}

// listTools answers tools/list for p from the live snapshot.
func (s *Server) listTools(ctx context.Context, p call.Principal) *sdk.ListToolsResult {
	snap := s.d.Snapshot()
	res := &sdk.ListToolsResult{Tools: []*sdk.Tool{}}
	tools := permitted(snap, p, s.skipped)
	upstream := s.upstreams(ctx, snap, tools)
	for _, t := range tools {
		conn, ok := snap.Engine.Connector(t.connector)
		if !ok {
			continue
		}
		decl := conn.Actions[t.action]
		var up *sdk.Tool
		if list, isMCP := upstream[t.connector]; isMCP {
			up = list[t.action]
			if decl == nil && list != nil && up == nil {
				continue // permitted by name, but the upstream has no such tool
			}
		}
		res.Tools = append(res.Tools, describe(conn, t, decl, up))
	}
	return res
}

// upstreams fetches, concurrently, the tool lists of the mcp connectors
// among tools: connector → tool name → tool, nil when its list could not
// be had.
func (s *Server) upstreams(ctx context.Context, snap *dispatch.Snapshot, tools []tool) map[string]map[string]*sdk.Tool {
	type job struct {
		name string
		ut   UpstreamTools
		list map[string]*sdk.Tool
	}
	var jobs []*job
	seen := map[string]bool{}
	for _, t := range tools {
		if ut, isMCP := snap.Executors[t.connector].(UpstreamTools); isMCP && !seen[t.connector] {
			seen[t.connector] = true
			jobs = append(jobs, &job{name: t.connector, ut: ut})
		}
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.list = s.upstreamTools(ctx, j.name, j.ut)
		}()
	}
	wg.Wait()
	out := make(map[string]map[string]*sdk.Tool, len(jobs))
	for _, j := range jobs {
		out[j.name] = j.list
	}
	return out
}

// upstreamTools asks an mcp connector for its upstream's tools, briefly: a
// slow or broken upstream must not hold the whole list. Nil when it fails.
func (s *Server) upstreamTools(ctx context.Context, name string, ut UpstreamTools) map[string]*sdk.Tool {
	ctx, cancel := context.WithTimeout(ctx, listWait)
	defer cancel()
	tools, err := ut.UpstreamTools(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "mcp connector: listing the upstream's tools failed; listing the configured ones", "connector", name, "err", err)
		return nil
	}
	m := make(map[string]*sdk.Tool, len(tools))
	for _, t := range tools {
		if t != nil {
			m[t.Name] = t
		}
	}
	return m
}

// describe builds the tool an agent sees: the config's description and
// schema first, then the upstream's, then generic ones.
func describe(conn *config.Connector, t tool, decl *config.Action, up *sdk.Tool) *sdk.Tool {
	out := &sdk.Tool{Name: toolName(t.connector, t.action), InputSchema: permissiveSchema}
	switch {
	case decl != nil && decl.Description != "":
		out.Description = decl.Description
	case up != nil && up.Description != "":
		out.Description = up.Description
	default:
		out.Description = fmt.Sprintf("%s on %s", t.action, t.connector)
		if conn.Description != "" {
			out.Description += " (" + conn.Description + ")"
		}
	}
	switch {
	case decl != nil && decl.InputSchema != nil:
		out.InputSchema = decl.InputSchema
	case up != nil && up.InputSchema != nil:
		out.InputSchema = objectSchema(up.InputSchema)
	}
	if up != nil {
		out.Title = up.Title
		out.Annotations = up.Annotations
	}
	if t.mode == config.Ask {
		out.Description += approvalNote
	}
	return out
}

// objectSchema returns an upstream's input schema if it is a JSON object
// of type object (what MCP requires of a tool's input schema), else the
// permissive one.
func objectSchema(v any) any {
	var m map[string]any
	switch x := v.(type) {
	case map[string]any:
		m = x
	case json.RawMessage:
		if json.Unmarshal(x, &m) != nil {
			return permissiveSchema
		}
	default:
		b, err := json.Marshal(v)
		if err != nil || json.Unmarshal(b, &m) != nil {
			return permissiveSchema
		}
	}
	if m == nil || m["type"] != "object" {
		return permissiveSchema
	}
	return m
}
