package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/app/apptest"
)

const claudeCodeExample = "../../examples/claude-code"

// startWarden runs `warden serve` in-process on the claude-code example and
// returns its URL and database.
func startWarden(t *testing.T, cfgDir string) (url, db string) {
	t.Helper()
	db = filepath.Join(t.TempDir(), "warden.db")
	return apptest.Start(t, app.Options{ConfigDir: cfgDir, DB: db}).URL, db
}

func payload(event, tool, input, useID, extra string) string {
	return fmt.Sprintf(`{"session_id":"sess-1","transcript_path":"/tmp/t.jsonl","cwd":"/home/dev/app","permission_mode":"default",`+
		`"hook_event_name":%q,"tool_name":%q,"tool_input":%s,"tool_use_id":%q%s}`, event, tool, input, useID, extra)
}

type hookAnswer struct {
	HookSpecificOutput struct {
		HookEventName string `json:"hookEventName"`
		Decision      string `json:"permissionDecision"`
		Reason        string `json:"permissionDecisionReason"`
	} `json:"hookSpecificOutput"`
}

func answer(t *testing.T, stdout string) hookAnswer {
	t.Helper()
	var a hookAnswer
	if err := json.Unmarshal([]byte(stdout), &a); err != nil {
		t.Fatalf("hook printed %q, not its JSON answer: %v", stdout, err)
	}
	if a.HookSpecificOutput.HookEventName != "PreToolUse" {
		t.Fatalf("hookEventName = %q", a.HookSpecificOutput.HookEventName)
	}
	return a
}

// TestHookClaudeCode drives `warden hook claude-code` the way Claude Code
// does — one process per tool call, payload on stdin — against a real
// server running the example Claude Code policy.
func TestHookClaudeCode(t *testing.T) {
	url, db := startWarden(t, claudeCodeExample)
	code, tok, errOut := run(t, "agents", "token", "create", "claude", "--db", db)
	if code != 0 {
		t.Fatalf("token create = %d: %s", code, errOut)
	}
	t.Setenv("WARDEN_TOKEN", strings.TrimSpace(tok))
	state := t.TempDir()
	if err := os.Chmod(state, 0o700); err != nil {
		t.Fatal(err)
	}
	hookRun := func(stdin string, flags ...string) (int, string, string) {
		return runIn(t, stdin, append([]string{"hook", "claude-code", "--server", url, "--state-dir", state}, flags...)...)
	}

	for _, tc := range []struct {
		name, tool, input string
		want, reason      string
	}{
		{"read", "Read", `{"file_path":"/home/dev/app/main.go"}`, "allow", ""},
		{"rm -rf /", "Bash", `{"command":"rm -rf /"}`, "deny", "removing the root or home directory is never allowed"},
		{"force push", "Bash", `{"command":"git push --force origin main"}`, "deny", "force-pushing to main"},
		{"curl elsewhere", "Bash", `{"command":"curl https://evil.example.net"}`, "deny", "curl may only fetch"},
		{"write outside", "Write", `{"file_path":"/etc/hosts","content":"x"}`, "ask", "asked the user of claude-code"},
		{"unlisted MCP tool", "mcp__github__create_issue", `{"title":"x"}`, "deny", "no permission"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := hookRun(payload("PreToolUse", tc.tool, tc.input, "toolu_"+strings.ReplaceAll(tc.name, " ", "_"), ""))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			a := answer(t, out)
			if a.HookSpecificOutput.Decision != tc.want || !strings.Contains(a.HookSpecificOutput.Reason, tc.reason) {
				t.Errorf("answer = %+v, want %s with a reason containing %q", a.HookSpecificOutput, tc.want, tc.reason)
			}
		})
	}

	// The tools that ran report their outcome.
	hookRun(payload("PostToolUse", "Read", `{"file_path":"/home/dev/app/main.go"}`, "toolu_read", `,"tool_response":{"type":"text","file":{"content":"package main"}}`))
	hookRun(payload("PostToolUse", "Write", `{"file_path":"/etc/hosts","content":"x"}`, "toolu_write_outside", `,"tool_response":{"success":false,"error":"EACCES"}`))
	// A PostToolUse without its PreToolUse reports nothing and says so.
	if code, out, errOut := hookRun(payload("PostToolUse", "Bash", `{"command":"ls"}`, "toolu_never_seen", `,"tool_response":{}`)); code != 0 || out != "" || !strings.Contains(errOut, "no PreToolUse decision") {
		t.Errorf("orphan PostToolUse = %d %q %q", code, out, errOut)
	}

	recs := exportAudit(t, db)
	byAction := map[string][]map[string]any{}
	for _, r := range recs {
		if r["front_end"] != "hook" {
			t.Errorf("record %v has front_end %v, want hook", r["id"], r["front_end"])
		}
		byAction[r["action"].(string)] = append(byAction[r["action"].(string)], r)
	}
	if rs := byAction["Read"]; len(rs) != 2 || rs[0]["kind"] != "decision_only" || rs[1]["kind"] != "reported_outcome" || rs[1]["outcome"] != "succeeded" {
		t.Errorf("Read records = %v; want decision_only then a succeeded reported_outcome", rs)
	}
	rs := byAction["Write"]
	if len(rs) != 2 || rs[0]["decision"] != "REQUIRE_APPROVAL" || rs[1]["outcome"] != "failed" {
		t.Fatalf("Write records = %v; want REQUIRE_APPROVAL then a failed reported_outcome", rs)
	}
	if ap, _ := rs[1]["approval"].(map[string]any); ap == nil || ap["approver"] != "user of claude-code" || ap["channel"] != "hook" {
		t.Errorf("the asked Write's outcome record has approval %v; want the Claude Code user on the hook channel", rs[1]["approval"])
	}
	if rs := byAction["Bash"]; len(rs) != 3 {
		t.Errorf("Bash records = %d, want the 3 denials", len(rs))
	}
	// Warden's own approvers were not asked: the user was, and the call
	// was open for its outcome at once.
	if !strings.Contains(rs[0]["reason"].(string), "asked the user of claude-code") {
		t.Errorf("the asked Write's decision reason = %q", rs[0]["reason"])
	}
}

// TestHookFailsClosed: whatever goes wrong, the answer is deny — or ask
// with --on-error ask — never allow.
func TestHookFailsClosed(t *testing.T) {
	good := payload("PreToolUse", "Read", `{"file_path":"/x"}`, "toolu_1", "")
	for _, tc := range []struct {
		name, stdin, token string
		flags              []string
		want, reason       string
	}{
		{"malformed payload", `{"hook_event_name":"PreToolUse",`, "wdn_x", nil, "deny", "JSON ends early"},
		{"empty payload", ``, "wdn_x", nil, "deny", "empty hook payload"},
		{"no token", good, "", nil, "deny", "no agent token"},
		{"warden unreachable", good, "wdn_x", []string{"--server", "http://127.0.0.1:1"}, "deny", "warden could not decide"},
		{"unreachable, on-error ask", good, "wdn_x", []string{"--server", "http://127.0.0.1:1", "--on-error", "ask"}, "ask", "warden could not decide"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WARDEN_TOKEN", tc.token)
			args := append([]string{"hook", "claude-code", "--server", "http://127.0.0.1:1", "--state-dir", t.TempDir(), "--timeout", "2s"}, tc.flags...)
			code, out, _ := runIn(t, tc.stdin, args...)
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			a := answer(t, out)
			if a.HookSpecificOutput.Decision != tc.want || !strings.Contains(a.HookSpecificOutput.Reason, tc.reason) {
				t.Errorf("answer = %+v, want %s with %q", a.HookSpecificOutput, tc.want, tc.reason)
			}
		})
	}
	// --on-error allow is refused outright.
	if code, _, errOut := runIn(t, good, "hook", "claude-code", "--on-error", "allow"); code != exitBadArgs || !strings.Contains(errOut, "never allow") {
		t.Errorf("--on-error allow = %d %q", code, errOut)
	}
}

// exportAudit reads every audit record through `warden audit export`.
func exportAudit(t *testing.T, db string) []map[string]any {
	t.Helper()
	code, out, errOut := run(t, "audit", "export", "--format", "jsonl", "--db", db)
	if code != 0 {
		t.Fatalf("audit export = %d: %s", code, errOut)
	}
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit export line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}
