package cli

import (
	"log/slog"
	"strings"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/mcp"
)

// warden mcp --agent A [--server URL] [--token-file F]
//
// An MCP server over stdio for clients that launch a command (Claude
// Desktop, Claude Code, Cursor...). It is a bridge: every message goes to
// the running server's POST /mcp with the agent's token, which lists the
// agent's tools and decides and audits every call. Its stdout carries MCP
// only; diagnostics go to stderr.
func runMCP(e *env, args []string) int {
	fs := newFlags("mcp", "mcp --agent AGENT [--server URL] [--token-file FILE]")
	agent := fs.String("agent", "", "the agent this client acts as; its token must be this agent's (required)")
	server := fs.String("server", envOr("WARDEN_URL", "http://"+app.DefaultAddr), "warden's URL (env WARDEN_URL)")
	tokenFile := fs.String("token-file", "", "file holding the agent's token (default: env WARDEN_TOKEN)")
	pos, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(pos) > 0 {
		e.errorf("warden mcp takes no arguments, got %q", pos[0])
		return exitBadArgs
	}
	if *agent == "" {
		e.errorf("--agent is required: the agent whose token this client uses")
		return exitBadArgs
	}
	tok, err := agentToken(*tokenFile)
	if err != nil {
		e.errorf("%v", err)
		return exitBadArgs
	}
	b := &mcp.Bridge{
		URL:   strings.TrimSuffix(*server, "/") + "/mcp",
		Token: tok, Agent: *agent,
		Log: slog.New(slog.NewTextHandler(e.stderr, nil)),
	}
	if err := b.Run(e.ctx, e.stdin, e.stdout); err != nil {
		e.errorf("%v", err)
		return exitFailed
	}
	return exitOK
}
