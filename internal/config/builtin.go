package config

import "github.com/warden-dev/warden/internal/call"

// ClaudeCode returns the built-in claude-code connector: its actions are
// Claude Code's tool names. Tools not listed here (MCP tools, named
// mcp__<server>__<tool>, and tools added to Claude Code later) are accepted
// as actions of type unknown.
func ClaudeCode() *Connector {
	types := map[string]call.ActionType{
		"Read": call.Read, "Glob": call.Read, "Grep": call.Read, "LS": call.Read,
		"Edit": call.Write, "MultiEdit": call.Write, "Write": call.Write, "NotebookEdit": call.Write,
		"Bash":     call.Execute,
		"WebFetch": call.Network, "WebSearch": call.Network,
	}
	c := &Connector{Name: TypeClaudeCode, Type: TypeClaudeCode, Builtin: true,
		Description: "Claude Code's built-in tools, governed through its PreToolUse/PostToolUse hooks",
		Actions:     map[string]*Action{}}
	for name, t := range types {
		c.Actions[name] = &Action{Name: name, Type: t}
	}
	return c
}
