package hook

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/NAME, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/hook -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestPayloadGolden maps a real-shaped payload of every tool to the call
// warden decides and to the answer for each decision.
func TestPayloadGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/payloads/*.json")
	if len(files) < 10 {
		t.Fatalf("found %d payloads under testdata/payloads; want one per tool", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var out bytes.Buffer
			out.WriteString("event: " + p.Event + "\n")
			c, _ := json.MarshalIndent(p.Call(), "", "  ")
			out.WriteString("call: " + string(c) + "\n")
			if p.Reports() {
				failed, why := p.Failed()
				out.WriteString("failed: " + map[bool]string{true: "true (" + why + ")", false: "false"}[failed] + "\n")
			} else {
				for _, d := range []string{"ALLOW", "ALLOW_WITH_CONSTRAINTS", "DENY", "REQUIRE_APPROVAL"} {
					out.WriteString(d + ": ")
					out.Write(Answer(Verdict(d), "reason for "+d))
				}
			}
			golden(t, "payloads/"+name+".golden", out.Bytes())
		})
	}
}

// TestBrokenPayloads: each malformed payload is an error that says what was
// wrong, and never quotes the tool input.
func TestBrokenPayloads(t *testing.T) {
	files, _ := filepath.Glob("testdata/broken/*.json")
	var out bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(data)
		if err == nil {
			t.Errorf("%s: Parse succeeded; want an error", f)
			continue
		}
		if strings.Contains(err.Error(), "rm -rf") || strings.Contains(err.Error(), "ls -la") {
			t.Errorf("%s: error quotes the tool input: %v", f, err)
		}
		out.WriteString(filepath.Base(f) + ": " + err.Error() + "\n")
	}
	golden(t, "broken.golden", out.Bytes())
}

func TestParseLimits(t *testing.T) {
	big := `{"hook_event_name":"PreToolUse","tool_name":"Write","tool_input":{"content":"` + strings.Repeat("x", MaxPayload) + `"}}`
	if _, err := Parse([]byte(big)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized payload: err = %v, want a limit error", err)
	}
	long := `{"hook_event_name":"PreToolUse","tool_name":"` + strings.Repeat("a", maxToolName+1) + `"}`
	if _, err := Parse([]byte(long)); err == nil {
		t.Error("overlong tool_name accepted")
	}
	// Unknown fields from a newer Claude Code are ignored; a missing or
	// null tool_input is an empty object.
	p, err := Parse([]byte(`{"hook_event_name":"PreToolUse","tool_name":"Read","tool_input":null,"new_field":{"x":1}}`))
	if err != nil || p.ToolInput == nil || len(p.ToolInput) != 0 {
		t.Errorf("Parse = %+v, %v; want an empty tool input", p, err)
	}
}

func TestVerdict(t *testing.T) {
	for decision, want := range map[string]string{
		"ALLOW": Allow, "ALLOW_WITH_CONSTRAINTS": Allow, "DENY": Deny,
		"REQUIRE_APPROVAL": Ask, "": Deny, "MAYBE": Deny,
	} {
		if got := Verdict(decision); got != want {
			t.Errorf("Verdict(%q) = %q, want %q", decision, got, want)
		}
	}
}

func TestFailed(t *testing.T) {
	for _, tc := range []struct {
		resp string
		want bool
	}{
		{`{"stdout":"ok","interrupted":false}`, false},
		{`{"interrupted":true}`, true},
		{`{"success":true}`, false},
		{`{"success":false}`, true},
		{`{"is_error":true}`, true},
		{`{"error":""}`, false},
		{`{"error":"EACCES"}`, true},
		{`"plain text"`, false},
		{`[1,2]`, false},
		{``, false},
	} {
		if got, _ := Failed(json.RawMessage(tc.resp)); got != tc.want {
			t.Errorf("Failed(%s) = %v, want %v", tc.resp, got, tc.want)
		}
	}
}

// FuzzParse: no payload panics the parser, and whatever it accepts maps to
// a call on the claude-code connector with a well-formed tool name.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/payloads", "testdata/broken"} {
		files, _ := filepath.Glob(dir + "/*.json")
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		c := p.Call()
		if c.Connector != Connector || checkToolName(c.Action) != nil || c.Args == nil {
			t.Fatalf("accepted payload maps to a bad call: %+v", c)
		}
		if p.Event != PreToolUse && !p.Reports() {
			t.Fatalf("accepted event %q", p.Event)
		}
		if !json.Valid(Answer(Verdict("ALLOW"), p.ToolName)) {
			t.Fatal("Answer is not JSON")
		}
	})
}
