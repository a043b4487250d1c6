package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const quickstart = "../../examples/quickstart"

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestValidate(t *testing.T) {
	code, out, errOut := run(t, "validate", "--config", quickstart)
	if code != 0 || !strings.HasPrefix(out, "ok: ") || len(strings.TrimSpace(out)) != len("ok: ")+64 {
		t.Fatalf("validate quickstart = %d %q %q", code, out, errOut)
	}
	code, out, errOut = run(t, "validate", "--config", "../config/testdata/broken/wrong-types")
	if code != 1 || out != "" {
		t.Errorf("validate broken = %d, stdout %q; want 1 and nothing on stdout", code, out)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) < 5 || !strings.Contains(lines[0], "config.yaml:2:7:") || !strings.HasSuffix(lines[len(lines)-1], " errors") {
		t.Errorf("validate broken stderr:\n%s\nwant every error with file:line:col and a count", errOut)
	}
	t.Setenv("WARDEN_CONFIG", quickstart)
	if code, _, errOut := run(t, "validate"); code != 0 {
		t.Errorf("validate with WARDEN_CONFIG = %d %s", code, errOut)
	}
}

func TestExplainJSON(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		decision string
		rules    []string
	}{
		{"allow", []string{"--connector", "notes", "--action", "get_note", "--args", `{"id":"1"}`}, "ALLOW", []string{"permission", "reads-are-fine"}},
		{"deny", []string{"--connector", "notes", "--action", "delete_note"}, "DENY", []string{"permission"}},
		{"approval", []string{"--connector", "payments", "--action", "refund", "--args", `{"amount_cents": 20000, "currency": "USD"}`}, "REQUIRE_APPROVAL", []string{"big-refunds"}},
		{"production", []string{"--connector", "notes", "--action", "create_note", "--env", "production", "--args", `{"title":"t","folder":"work"}`}, "REQUIRE_APPROVAL", []string{"production-writes"}},
		{"constraints", []string{"--connector", "notes", "--action", "create_note", "--args", `{"title":"t","folder":"work"}`}, "ALLOW_WITH_CONSTRAINTS", []string{"note-limits"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"explain", "--config", quickstart, "--agent", "assistant", "--json"}, tt.args...)
			code, out, errOut := run(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got struct {
				Decision string   `json:"decision"`
				Rules    []string `json:"rules"`
				Reason   string   `json:"reason"`
				Version  string   `json:"version"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
			}
			if strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Errorf("stdout has more than one line: %q", out)
			}
			if got.Decision != tt.decision || strings.Join(got.Rules, ",") != strings.Join(tt.rules, ",") || got.Reason == "" || len(got.Version) != 64 {
				t.Errorf("got %+v, want %s %v with a reason and version", got, tt.decision, tt.rules)
			}
		})
	}
}

func TestExplainBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown agent", []string{"--agent", "ghost", "--connector", "notes", "--action", "get_note"}, `unknown agent "ghost"`},
		{"unknown connector", []string{"--agent", "assistant", "--connector", "nope", "--action", "x"}, `unknown connector "nope"`},
		{"unknown action", []string{"--agent", "assistant", "--connector", "notes", "--action", "x"}, `has no action "x"`},
		{"malformed args", []string{"--agent", "assistant", "--connector", "notes", "--action", "get_note", "--args", `{"id":`}, "--args"},
		{"args not an object", []string{"--agent", "assistant", "--connector", "notes", "--action", "get_note", "--args", `[1]`}, "JSON object"},
		{"missing flags", []string{"--agent", "assistant"}, "missing --action, --connector"},
		{"bad time", []string{"--agent", "assistant", "--connector", "notes", "--action", "get_note", "--time", "noon"}, "RFC 3339"},
		{"unknown flag", []string{"--agnet", "assistant"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"explain", "--config", quickstart}, tt.args...)
			code, out, errOut := run(t, args...)
			if code != 2 || out != "" || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", code, out, errOut, tt.want)
			}
			if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
				t.Errorf("stack trace in output: %s", errOut)
			}
		})
	}
}

func TestTestCommand(t *testing.T) {
	code, out, errOut := run(t, "test", "--config", quickstart, filepath.Join(quickstart, "policy_test.yaml"))
	if code != 0 || !strings.HasSuffix(out, "10 passed, 0 failed\n") {
		t.Fatalf("quickstart tests = %d %q %q", code, out, errOut)
	}

	failing := filepath.Join(t.TempDir(), "fail_test.yaml")
	os.WriteFile(failing, []byte(`tests:
  - name: wrong decision
    call: {agent: assistant, connector: notes, action: delete_note}
    expect: {decision: ALLOW}
  - name: wrong rules
    call: {agent: assistant, connector: notes, action: get_note}
    expect: {decision: ALLOW, rules: [nope]}
  - name: right
    call: {agent: assistant, connector: notes, action: list_notes}
    expect: {decision: ALLOW}
`), 0o644)
	// Flags after the file work too.
	code, out, _ = run(t, "test", failing, "--config", quickstart)
	want := []string{
		"fail_test.yaml:2:5: wrong decision: expected ALLOW, got DENY [permission]",
		"fail_test.yaml:5:5: wrong rules: expected ALLOW [nope], got ALLOW [permission, reads-are-fine]",
		"1 passed, 2 failed",
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad_test.yaml")
	os.WriteFile(bad, []byte("tests: {}\n"), 0o644)
	if code, _, errOut := run(t, "test", "--config", quickstart, bad); code != 2 || !strings.Contains(errOut, "bad_test.yaml:1:8: tests must be a list") {
		t.Errorf("bad test file: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := run(t, "test", "--config", quickstart); code != 2 {
		t.Errorf("no files: exit %d, want 2", code)
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, errOut := run(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("exit %d, %q", code, errOut)
	}
	if code, out, _ := run(t, "help"); code != 0 || !strings.Contains(out, "validate") {
		t.Errorf("help: %d %q", code, out)
	}
}
