package template

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: no input makes Parse or Render panic; every failure is a
// *SyntaxError whose offset lies inside the input; and escaping every brace
// of any string yields a template that renders back to that string.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/repos/{args.owner}/{args.repo}", "{args}", "Bearer {credentials.token}", "{{x}}"} {
		f.Add(s)
	}
	args := map[string]any{"a": "x", "b": map[string]any{"c": []any{int64(1), 2.5}}}
	data := Data{Args: args, Credential: func(name string) (string, error) {
		if name == "token" {
			return "v", nil
		}
		return "", errors.New("unknown")
	}}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error is %T, want *SyntaxError", s, err)
			}
			if se.Offset < 0 || se.Offset >= len(s) {
				t.Fatalf("Parse(%q) error offset %d outside the input", s, se.Offset)
			}
			if se.Msg == "" {
				t.Fatalf("Parse(%q): empty error message", s)
			}
		} else {
			for _, esc := range []Escaper{nil, PathSegment} {
				if _, err := Render(tm, data, esc); err != nil {
					var ae *ArgError
					var ce *CredentialError
					if !errors.As(err, &ae) && !errors.As(err, &ce) {
						t.Fatalf("Render(%q) error is %T: %v", s, err, err)
					}
				}
			}
			if _, err := RenderValue(tm, data); err != nil {
				var ae *ArgError
				var ce *CredentialError
				if !errors.As(err, &ae) && !errors.As(err, &ce) {
					t.Fatalf("RenderValue(%q) error is %T: %v", s, err, err)
				}
			}
		}

		quoted := strings.NewReplacer("{", "{{", "}", "}}").Replace(s)
		lit, err := Parse(quoted)
		if err != nil {
			t.Fatalf("Parse(%q) of a fully escaped string: %v", quoted, err)
		}
		if !lit.IsLiteral() {
			t.Fatalf("Parse(%q) found references in a fully escaped string", quoted)
		}
		got, err := Render(lit, Data{}, nil)
		if err != nil || got != s {
			t.Fatalf("Render(Parse(%q)) = %q, %v; want %q", quoted, got, err, s)
		}
	})
}
