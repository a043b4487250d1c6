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

	// --token-file instead of $WARDEN_TOKEN: its first line is the token.
	t.Run("token file", func(t *testing.T) {
		t.Setenv("WARDEN_TOKEN", "")
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte("  "+strings.TrimSpace(tok)+"\nignored\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := hookRun(payload("PreToolUse", "Read", `{"file_path":"/home/dev/app/a.go"}`, "toolu_token_file", ""), "--token-file", file)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if a := answer(t, out); a.HookSpecificOutput.Decision != "allow" {
			t.Errorf("answer with --token-file = %+v, want allow", a.HookSpecificOutput)
		}
	})

	// A state directory others can read is refused: the decision stands,
	// but no call id is left in it, and its PostToolUse reports nothing.
	t.Run("state dir not 0700", func(t *testing.T) {
		open := t.TempDir()
		if err := os.Chmod(open, 0o755); err != nil {
			t.Fatal(err)
		}
		in := `{"file_path":"/home/dev/app/b.go"}`
		code, out, errOut := runIn(t, payload("PreToolUse", "Read", in, "toolu_open_state", ""), "hook", "claude-code", "--server", url, "--state-dir", open)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if a := answer(t, out); a.HookSpecificOutput.Decision != "allow" || !strings.Contains(errOut, "mode 0700") {
			t.Errorf("PreToolUse with a 0755 state dir = %+v, stderr %q; want allow, and the state dir refused on stderr", a.HookSpecificOutput, errOut)
		}
		if entries, err := os.ReadDir(open); err != nil || len(entries) != 0 {
			t.Errorf("the 0755 state dir holds %v (%v); want nothing", entries, err)
		}
		code, out, errOut = runIn(t, payload("PostToolUse", "Read", in, "toolu_open_state", `,"tool_response":{}`), "hook", "claude-code", "--server", url, "--state-dir", open)
		if code != 0 || out != "" || !strings.Contains(errOut, "mode 0700") {
			t.Errorf("PostToolUse with a 0755 state dir = %d %q %q; want exit 0, no output, the state dir refused", code, out, errOut)
		}
	})

	// The tools that ran report their outcome; a tool_response over
	// maxReportedResult is reported without its result.
	hookRun(payload("PostToolUse", "Read", `{"file_path":"/home/dev/app/main.go"}`, "toolu_read", `,"tool_response":{"type":"text","file":{"content":"package main"}}`))
	big := `{"file_path":"/home/dev/app/big.go"}`
	hookRun(payload("PreToolUse", "Read", big, "toolu_big", ""))
	hookRun(payload("PostToolUse", "Read", big, "toolu_big", `,"tool_response":{"content":"`+strings.Repeat("x", maxReportedResult)+`"}`))
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
	reads := map[string][]map[string]any{} // by file_path
	for _, r := range byAction["Read"] {
		args, _ := r["args"].(map[string]any)
		path, _ := args["file_path"].(string)
		reads[path] = append(reads[path], r)
	}
	if rs := reads["/home/dev/app/main.go"]; len(rs) != 2 || rs[0]["kind"] != "decision_only" || rs[1]["kind"] != "reported_outcome" || rs[1]["outcome"] != "succeeded" || rs[1]["result_digest"] == "" {
		t.Errorf("Read records = %v; want decision_only then a succeeded reported_outcome with its result", rs)
	}
	if rs := reads["/home/dev/app/big.go"]; len(rs) != 2 || rs[1]["kind"] != "reported_outcome" || rs[1]["outcome"] != "succeeded" || rs[1]["result_digest"] != "" {
		t.Errorf("big Read records = %v; want a succeeded reported_outcome without a result", rs)
	}
	if rs := reads["/home/dev/app/a.go"]; len(rs) != 1 || rs[0]["decision"] != "ALLOW" {
		t.Errorf("Read with --token-file records = %v; want one ALLOW", rs)
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
	emptyFile := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(emptyFile, []byte("\n \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stdin, token string
		flags              []string
		want, reason       string
	}{
		{"malformed payload", `{"hook_event_name":"PreToolUse",`, "wdn_x", nil, "deny", "JSON ends early"},
		{"empty payload", ``, "wdn_x", nil, "deny", "empty hook payload"},
		{"no token", good, "", nil, "deny", "no agent token"},
		{"missing token file", good, "", []string{"--token-file", filepath.Join(t.TempDir(), "none")}, "deny", "cannot read --token-file"},
		{"empty token file", good, "wdn_x", []string{"--token-file", emptyFile}, "deny", "--token-file is empty"},
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
