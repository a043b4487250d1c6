// Package hook reads Claude Code's hook payloads and writes its answers.
// It is pure: `warden hook claude-code` (internal/cli) does the I/O, asks
// warden's API and prints what Answer returns.
//
// Claude Code runs a command hook with one JSON object on stdin:
//
//	{"session_id": "...", "transcript_path": "...", "cwd": "...",
//	 "permission_mode": "default", "hook_event_name": "PreToolUse",
//	 "tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_use_id": "toolu_..."}
//
// PostToolUse payloads carry "tool_response" as well. A PreToolUse hook
// answers on stdout, exit 0:
//
//	{"hookSpecificOutput": {"hookEventName": "PreToolUse",
//	 "permissionDecision": "allow"|"deny"|"ask", "permissionDecisionReason": "..."}}
package hook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/warden-dev/warden/internal/call"
)

// Hook events warden answers.
const (
	PreToolUse  = "PreToolUse"
	PostToolUse = "PostToolUse"
	// PostToolUseFailure is what newer Claude Code versions send, instead
	// of PostToolUse, after a tool failed.
	PostToolUseFailure = "PostToolUseFailure"
)

// Claude Code's permission decisions.
const (
	Allow = "allow"
	Deny  = "deny"
	Ask   = "ask"
)

// Connector is the built-in connector every Claude Code tool belongs to.
const Connector = "claude-code"

// MaxPayload bounds what the hook reads from stdin. A larger payload is an
// error (and so a deny), never a truncated decision.
const MaxPayload = 4 << 20

// maxToolName bounds a tool name; Claude Code's are short (MCP tools are
// mcp__<server>__<tool>).
const maxToolName = 256

// Payload is what Claude Code sends a command hook. Fields Claude Code adds
// later are ignored, so a newer Claude Code keeps working.
type Payload struct {
	SessionID      string         `json:"session_id"`
	TranscriptPath string         `json:"transcript_path"`
	CWD            string         `json:"cwd"`
	PermissionMode string         `json:"permission_mode"`
	Event          string         `json:"hook_event_name"`
	ToolName       string         `json:"tool_name"`
	ToolInput      map[string]any `json:"tool_input"`
	ToolUseID      string         `json:"tool_use_id"`
	// ToolResponse is what the tool returned (PostToolUse only), kept raw.
	ToolResponse json.RawMessage `json:"tool_response,omitempty"`
}

// Parse reads and checks one payload. Errors say what was wrong in the
// payload's terms and never quote its values (a tool input may hold a
// secret).
func Parse(data []byte) (*Payload, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty hook payload: expected one JSON object on stdin")
	}
	if len(data) > MaxPayload {
		return nil, fmt.Errorf("hook payload is %d bytes; the limit is %d", len(data), MaxPayload)
	}
	var raw struct {
		Payload
		ToolInput json.RawMessage `json:"tool_input"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("hook payload is not a JSON object: %s", describe(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("hook payload has data after its JSON object")
	}
	p := raw.Payload
	switch p.Event {
	case PreToolUse, PostToolUse, PostToolUseFailure:
	case "":
		return nil, errors.New("hook payload has no hook_event_name")
	default:
		return nil, fmt.Errorf("hook_event_name %q is not one warden answers; configure the hook for PreToolUse, PostToolUse and PostToolUseFailure only", clip(p.Event))
	}
	if err := checkToolName(p.ToolName); err != nil {
		return nil, err
	}
	p.ToolInput = map[string]any{}
	if in := bytes.TrimSpace(raw.ToolInput); len(in) > 0 && !bytes.Equal(in, []byte("null")) {
		args, err := call.DecodeArgs(in)
		switch {
		case err != nil && in[0] == '{':
			// An object (it decoded above) whose number does not fit;
			// DecodeArgs's message would quote it.
			return nil, errors.New("tool_input holds a number out of range")
		case err != nil:
			return nil, errors.New("tool_input must be a JSON object")
		}
		p.ToolInput = args
	}
	if !utf8.ValidString(p.SessionID) || !utf8.ValidString(p.ToolUseID) {
		return nil, errors.New("session_id and tool_use_id must be UTF-8 text")
	}
	return &p, nil
}

func checkToolName(name string) error {
	if name == "" {
		return errors.New("hook payload has no tool_name")
	}
	if len(name) > maxToolName {
		return fmt.Errorf("tool_name is %d bytes; the limit is %d", len(name), maxToolName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return errors.New("tool_name may only hold letters, digits, '_', '-' and '.'")
		}
	}
	return nil
}

// describe names a JSON error without echoing the input.
func describe(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return "the payload must be a JSON object"
		}
		return fmt.Sprintf("field %s has the wrong type", strings.TrimPrefix(te.Field, "Payload."))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	return "malformed JSON"
}

// clip shortens a value quoted back in an error.
func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// Call is what a payload asks warden to decide: the claude-code
// connector's action named after the tool, with the tool's input as args.
type Call struct {
	Connector string         `json:"connector"`
	Action    string         `json:"action"`
	Args      map[string]any `json:"args"`
	RunID     string         `json:"run_id,omitempty"`
}

// Call maps the payload to the call warden decides. The session is the
// run: every tool call of one Claude Code session shares its run_id.
func (p *Payload) Call() Call {
	return Call{Connector: Connector, Action: p.ToolName, Args: p.ToolInput, RunID: p.SessionID}
}

// Verdict maps a warden decision to Claude Code's permission decision:
// ALLOW and ALLOW_WITH_CONSTRAINTS allow, DENY denies, REQUIRE_APPROVAL
// asks Claude Code's user. Anything else — a decision this build does not
// know — denies.
func Verdict(decision string) string {
	switch decision {
	case string(call.Allow), string(call.AllowWithConstraints):
		return Allow
	case string(call.RequireApproval):
		return Ask
	}
	return Deny
}

// Answer is the JSON a PreToolUse hook prints: Claude Code's
// hookSpecificOutput with the permission decision and its reason.
func Answer(decision, reason string) []byte {
	out := map[string]any{"hookSpecificOutput": map[string]string{
		"hookEventName":            PreToolUse,
		"permissionDecision":       decision,
		"permissionDecisionReason": reason,
	}}
	b, _ := json.Marshal(out) // strings only: cannot fail
	return append(b, '\n')
}

// Reports says whether the payload reports what a tool did (the events after
// the tool ran) rather than asking whether it may run.
func (p *Payload) Reports() bool { return p.Event != PreToolUse }

// Failed reports whether the tool failed, and why in warden's words: a
// PostToolUseFailure, or a tool_response that says so (see Failed).
func (p *Payload) Failed() (bool, string) {
	if failed, why := Failed(p.ToolResponse); failed {
		return true, why
	}
	if p.Event == PostToolUseFailure {
		return true, "the tool failed"
	}
	return false, ""
}

// Failed reports whether a PostToolUse tool_response says the tool failed:
// an object with "success": false, "is_error": true, "interrupted": true or
// a non-empty "error". Anything else counts as success.
func Failed(resp json.RawMessage) (bool, string) {
	var r struct {
		Success     *bool `json:"success"`
		IsError     bool  `json:"is_error"`
		Interrupted bool  `json:"interrupted"`
		Error       any   `json:"error"`
	}
	if json.Unmarshal(resp, &r) != nil {
		return false, ""
	}
	switch {
	case r.Success != nil && !*r.Success:
		return true, "the tool reported success: false"
	case r.IsError:
		return true, "the tool reported an error"
	case r.Interrupted:
		return true, "the tool was interrupted"
	case r.Error != nil && r.Error != "" && r.Error != false:
		return true, "the tool reported an error"
	}
	return false, ""
}
