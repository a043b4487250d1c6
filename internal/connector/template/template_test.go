package template

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRefs(t *testing.T) {
	tests := []struct {
		in        string
		want      []Ref
		wholeArgs bool
		literal   bool
	}{
		{in: "", literal: true},
		{in: "/plain/path", literal: true},
		{in: "{{not a ref}}", literal: true},
		{in: "{args}", want: []Ref{{Kind: WholeArgs}}, wholeArgs: true},
		{in: " {args}", want: []Ref{{Kind: WholeArgs, Offset: 1}}},
		{in: "{args.x}", want: []Ref{{Kind: Arg, Name: "x"}}},
		{in: "/repos/{args.repo.owner}/{args.repo.name}", want: []Ref{{Kind: Arg, Name: "repo.owner", Offset: 7}, {Kind: Arg, Name: "repo.name", Offset: 25}}},
		{in: "Bearer {credentials.token}", want: []Ref{{Kind: Credential, Name: "token", Offset: 7}}},
		{in: "{credentials.gh.app:key-2}", want: []Ref{{Kind: Credential, Name: "gh.app:key-2"}}},
		{in: "{{{args.a}}}", want: []Ref{{Kind: Arg, Name: "a", Offset: 2}}},
		{in: "{args.tags.0}", want: []Ref{{Kind: Arg, Name: "tags.0"}}},
	}
	for _, tt := range tests {
		tm, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := tm.Refs(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q).Refs() = %+v, want %+v", tt.in, got, tt.want)
		}
		if got := tm.IsWholeArgs(); got != tt.wholeArgs {
			t.Errorf("Parse(%q).IsWholeArgs() = %v, want %v", tt.in, got, tt.wholeArgs)
		}
		if got := tm.IsLiteral(); got != tt.literal {
			t.Errorf("Parse(%q).IsLiteral() = %v, want %v", tt.in, got, tt.literal)
		}
		if got := tm.String(); got != tt.in {
			t.Errorf("Parse(%q).String() = %q", tt.in, got)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in     string
		offset int
		want   string
	}{
		{"/items/{args.id", 7, "unclosed '{' at offset 7; write '{{' for a literal '{'"},
		{"{", 0, "unclosed '{' at offset 0; write '{{' for a literal '{'"},
		{"{args.{x}}", 0, "unclosed '{' at offset 0; write '{{' for a literal '{'"},
		{"a}b", 1, "unmatched '}' at offset 1; write '}}' for a literal '}'"},
		{"{foo}", 0, "unknown reference {foo}; expected {args}, {args.NAME} or {credentials.NAME}"},
		{"x{agrs.q}", 1, "unknown reference {agrs.q}; expected {args}, {args.NAME} or {credentials.NAME}"},
		{"{}", 0, "unknown reference {}; expected {args}, {args.NAME} or {credentials.NAME}"},
		{"{ args }", 0, "unknown reference { args }; expected {args}, {args.NAME} or {credentials.NAME}"},
		{"{args.}", 0, "reference {args.} at offset 0 has an empty name between dots"},
		{"{args.a..b}", 0, "reference {args.a..b} at offset 0 has an empty name between dots"},
		{"{args.a b}", 0, "reference {args.a b} at offset 0: argument names may hold only letters, digits, '_', '-' and ':'"},
		{"{credentials}", 0, "reference {credentials} at offset 0 must name a credential: {credentials.NAME}"},
		{"{credentials.}", 0, "reference {credentials.} at offset 0 must name a credential: {credentials.NAME}"},
		{"{credentials.a/b}", 0, "reference {credentials.a/b} at offset 0: a credential name may hold only letters, digits, '_', '-', ':' and '.'"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) error = %v, want *SyntaxError", tt.in, err)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("Parse(%q) error\n got: %s\nwant: %s", tt.in, got, tt.want)
		}
		if se.Offset != tt.offset {
			t.Errorf("Parse(%q) offset = %d, want %d", tt.in, se.Offset, tt.offset)
		}
	}
}

func mustParse(t *testing.T, s string) *Template {
	t.Helper()
	tm, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return tm
}

func creds(m map[string]string) func(string) (string, error) {
	return func(name string) (string, error) {
		v, ok := m[name]
		if !ok {
			return "", errors.New("not bound to this connector")
		}
		return v, nil
	}
}

func TestRender(t *testing.T) {
	args := map[string]any{
		"name":    "a/b c",
		"n":       int64(42),
		"f":       1.5,
		"big":     1e21,
		"whole":   float64(7),
		"num":     json.Number("3.0"),
		"ok":      true,
		"nothing": nil,
		"repo":    map[string]any{"owner": "octo", "name": "hello"},
		"tags":    []any{"x", "<y>"},
	}
	data := Data{Args: args, Credential: creds(map[string]string{"token": "s3cr/t"})}
	tests := []struct {
		tmpl string
		esc  Escaper
		want string
	}{
		{"/users/{args.name}", PathSegment, "/users/a%2Fb%20c"},
		{"/users/{args.name}", nil, "/users/a/b c"},
		{"{{literal}} {args.n}", PathSegment, "{literal} 42"},
		{"{args.f}|{args.big}|{args.whole}|{args.num}", nil, "1.5|1000000000000000000000|7|3"},
		{"{args.ok} {args.nothing}", nil, "true null"},
		{"{args.repo}", nil, `{"name":"hello","owner":"octo"}`},
		{"{args.repo.owner}/{args.repo.name}", PathSegment, "octo/hello"},
		{"{args.tags}", nil, `["x","<y>"]`},
		{"{args.tags.1}", nil, "<y>"},
		{"Bearer {credentials.token}", nil, "Bearer s3cr/t"},
		{"/{credentials.token}", PathSegment, "/s3cr%2Ft"},
	}
	for _, tt := range tests {
		got, err := Render(mustParse(t, tt.tmpl), data, tt.esc)
		if err != nil {
			t.Errorf("Render(%q): %v", tt.tmpl, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Render(%q) = %q, want %q", tt.tmpl, got, tt.want)
		}
	}
}

func TestRenderWholeArgs(t *testing.T) {
	tm := mustParse(t, "{args}")
	tests := []struct {
		args map[string]any
		want string
	}{
		{nil, "{}"},
		{map[string]any{}, "{}"},
		{map[string]any{"b": int64(1), "a": "<&>", "c": 2e21}, `{"a":"<&>","b":1,"c":2000000000000000000000}`},
	}
	for _, tt := range tests {
		got, err := Render(tm, Data{Args: tt.args}, nil)
		if err != nil {
			t.Errorf("Render({args}, %v): %v", tt.args, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Render({args}, %v) = %s, want %s", tt.args, got, tt.want)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	args := map[string]any{"repo": "hello", "tags": []any{"a"}}
	tests := []struct {
		tmpl string
		want string
	}{
		{"/repos/{args.owner}", "missing argument args.owner"},
		{"{args.repo.name}", `argument args.repo is a string, not an object, so it has no "name"`},
		{"{args.tags.1}", "missing argument args.tags.1"},
		{"{args.tags.x}", `argument args.tags is an array; "x" is not an index`},
		{"{args.owner.name}", "missing argument args.owner"},
	}
	for _, tt := range tests {
		_, err := Render(mustParse(t, tt.tmpl), Data{Args: args}, nil)
		var ae *ArgError
		if !errors.As(err, &ae) {
			t.Errorf("Render(%q) error = %v, want *ArgError", tt.tmpl, err)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("Render(%q) error = %q, want %q", tt.tmpl, got, tt.want)
		}
	}
	if _, err := Render(mustParse(t, "{args.x}"), Data{}, nil); err == nil || err.Error() != "missing argument args.x" {
		t.Errorf("Render with nil args: got %v, want missing argument args.x", err)
	}
}

func TestRenderCredentialErrors(t *testing.T) {
	const secret = "hunter2-value"
	resolver := func(name string) (string, error) {
		if name == "token" {
			return secret, nil
		}
		return "", errors.New("no such credential")
	}
	tests := []struct {
		tmpl string
		data Data
		want string
	}{
		{"{credentials.other}", Data{Credential: resolver}, `credential "other": no such credential`},
		{"{credentials.token}", Data{}, `credential "token" is not available here`},
		// A later failure must not carry the value rendered before it.
		{"{credentials.token}{args.missing}", Data{Credential: resolver}, "missing argument args.missing"},
	}
	for _, tt := range tests {
		_, err := Render(mustParse(t, tt.tmpl), tt.data, nil)
		if err == nil {
			t.Errorf("Render(%q): no error", tt.tmpl)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("Render(%q) error = %q, want %q", tt.tmpl, got, tt.want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Render(%q) error %q contains the credential value", tt.tmpl, err)
		}
	}
}

func TestRenderValue(t *testing.T) {
	args := map[string]any{"n": int64(3), "obj": map[string]any{"k": "v"}, "s": "str"}
	data := Data{Args: args, Credential: creds(map[string]string{"token": "t"})}
	tests := []struct {
		tmpl string
		want any
	}{
		{"{args.n}", int64(3)},
		{"{args.obj}", map[string]any{"k": "v"}},
		{"{args}", args},
		{"n={args.n}", "n=3"},
		{"{credentials.token}", "t"},
		{"literal", "literal"},
		{"{args.s}", "str"},
	}
	for _, tt := range tests {
		got, err := RenderValue(mustParse(t, tt.tmpl), data)
		if err != nil {
			t.Errorf("RenderValue(%q): %v", tt.tmpl, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("RenderValue(%q) = %#v, want %#v", tt.tmpl, got, tt.want)
		}
	}
	if _, err := RenderValue(mustParse(t, "{args.gone}"), data); err == nil || err.Error() != "missing argument args.gone" {
		t.Errorf("RenderValue({args.gone}) error = %v, want missing argument args.gone", err)
	}
}

func TestCredentials(t *testing.T) {
	tm := mustParse(t, "{credentials.a} {args.x} {credentials.b} {credentials.a}")
	if got, want := tm.Credentials(), []string{"a", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Credentials() = %v, want %v", got, want)
	}
}

func TestJSON(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{map[string]any{"a": []any{1e21, 0.25, json.Number("1E2"), "<tag>"}}, `{"a":[1000000000000000000000,0.25,100,"<tag>"]}`},
		{nil, "null"},
		{"x", `"x"`},
	}
	for _, tt := range tests {
		got, err := JSON(tt.in)
		if err != nil {
			t.Errorf("JSON(%v): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("JSON(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if _, err := JSON(map[string]any{"bad": json.Number("nope")}); err == nil {
		t.Error("JSON with an invalid json.Number: no error")
	}
}
