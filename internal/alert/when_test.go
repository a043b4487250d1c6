package alert

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // canonical form
	}{
		{"deny_rate > 0.2 over 5m", "deny_rate > 0.2 over 5m"},
		{"deny_rate>0.2", "deny_rate > 0.2 over 5m"},
		{`error_rate{connector=github} > 0.1 over 5m`, "error_rate{connector=github} > 0.1 over 5m"},
		{`error_rate{ connector = "github" , agent=bot } >= 0.5 over 1h`, "error_rate{agent=bot,connector=github} >= 0.5 over 1h"},
		{"cost_per_hour > 10", "cost_per_hour > 10 over 1h"},
		{"cost_per_hour{agent=bot} > 2.5 over 15m", "cost_per_hour{agent=bot} > 2.5 over 15m"},
		{"approval_backlog > 20", "approval_backlog > 20"},
		{"approval_backlog <= 0", "approval_backlog <= 0"},
		{"deny_rate > 1e-1 over 90s", "deny_rate > 0.1 over 90s"},
	} {
		c, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := c.String(); got != tc.want {
			t.Errorf("Parse(%q) = %q, want %q", tc.in, got, tc.want)
		}
		again, err := Parse(c.String())
		if err != nil || again.String() != c.String() {
			t.Errorf("Parse(String()) of %q: %v %q", tc.in, err, again.String())
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"", "at character 1: expected a metric"},
		{"deny_rates > 0.2", `at character 1: unknown metric "deny_rates"`},
		{"deny_rate 0.2", "at character 11: expected a comparison (>, >=, <, <=) after deny_rate"},
		{"deny_rate > ", "at character 13: expected a number after >"},
		{"deny_rate > 20%", "at character 13: deny_rate is a fraction between 0 and 1 (write 0.2 for 20%)"},
		{"deny_rate > 2", "deny_rate is a fraction between 0 and 1"},
		{"deny_rate > abc", `"abc" is not a number`},
		{"deny_rate > -1", "must not be negative"},
		{"deny_rate > NaN", `"NaN" is not a number`},
		{"deny_rate > 0.2 over", "expected a duration after over"},
		{"deny_rate > 0.2 over 5", `"5" is not a duration`},
		{"deny_rate > 0.2 over 2h", "between 1m and 1h"},
		{"deny_rate > 0.2 over 30s", "between 1m and 1h"},
		{"deny_rate > 0.2 over 65s", "whole number of 10 s"},
		{"deny_rate > 0.2 during 5m", `unexpected "during"`},
		{"deny_rate > 0.2 over 5m and more", `unexpected "and more"`},
		{"error_rate{connector=x > 0.1", "expected , or } in the labels"},
		{"error_rate{tenant=x} > 0.1", `error_rate has no label "tenant"; expected agent or connector`},
		{"error_rate{connector=a,connector=b} > 0.1", `label "connector" given twice`},
		{"error_rate{connector} > 0.1", "expected = after connector"},
		{`error_rate{connector="gi thub"} > 0.1`, "label values are names"},
		{`error_rate{connector="github} > 0.1`, "unterminated quoted value"},
		{"approval_backlog{agent=x} > 1", "approval_backlog takes no labels"},
		{"approval_backlog > 1 over 5m", "takes no window"},
		{strings.Repeat("x", 300), "longer than 256"},
	} {
		_, err := Parse(tc.in)
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): got %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParse: any input either parses into a condition whose canonical
// form parses back to itself, or fails with a SyntaxError inside it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"deny_rate > 0.2 over 5m", `error_rate{connector="github",agent=bot} >= 0.1 over 1h`, "cost_per_hour > 10", "approval_backlog > 20", "deny_rate{", "x > 1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(s) && se.Offset != maxWhen {
				t.Fatalf("Parse(%q): error %v (%T) out of range", s, err, err)
			}
			return
		}
		if c.Window < 0 || c.Window > MaxWindow || c.Threshold < 0 {
			t.Fatalf("Parse(%q) = %+v out of bounds", s, c)
		}
		again, err := Parse(c.String())
		if err != nil || again.String() != c.String() {
			t.Fatalf("round trip of %q: %q: %v", s, c.String(), err)
		}
		_ = c.Holds(0)
	})
}
