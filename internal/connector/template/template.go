// Package template parses and renders the templates that fill a connector's
// paths, queries, headers, bodies and argv elements.
//
// A template is literal text with references in braces:
//
//	{args}              the call's whole argument object, as compact JSON
//	{args.NAME}         one argument; dots walk into nested objects
//	                    ({args.repo.owner}) and digits index arrays ({args.tags.0})
//	{credentials.NAME}  a credential resolved for this call (NAME may contain dots)
//
// Literal braces are written "{{" and "}}". Anything else in braces is a
// syntax error, so a typo such as {agrs.q} fails when the config is loaded,
// not when an agent's call is executed.
//
// Rendering turns a string argument into its text and any other value into
// compact JSON (integers without an exponent). Values, never literal text,
// pass through the caller's Escaper.
//
// The package is pure: it knows nothing of HTTP, of secret providers or of
// config files. A credential's value is only ever written into the rendered
// output, never into an error.
package template

import (
	"fmt"
	"strings"
)

// Kind is the kind of a reference.
type Kind int

const (
	// WholeArgs is {args}.
	WholeArgs Kind = iota + 1
	// Arg is {args.NAME…}.
	Arg
	// Credential is {credentials.NAME}.
	Credential
)

// Ref is one reference in a template.
type Ref struct {
	Kind Kind
	// Name is the dotted argument path without the "args." prefix
	// ("repo.owner") for Arg, the credential name for Credential, and empty
	// for WholeArgs.
	Name string
	// Offset is the byte offset of the reference's '{' in the template.
	Offset int
}

// String returns the reference as written: {args}, {args.x.y} or
// {credentials.NAME}.
func (r Ref) String() string {
	switch r.Kind {
	case WholeArgs:
		return "{args}"
	case Arg:
		return "{args." + r.Name + "}"
	case Credential:
		return "{credentials." + r.Name + "}"
	}
	return "{?}"
}

// Path returns the argument path of an Arg reference as it appears in error
// messages and policy ("args.repo.owner"); "args" for WholeArgs.
func (r Ref) Path() string {
	if r.Kind == Arg {
		return "args." + r.Name
	}
	if r.Kind == WholeArgs {
		return "args"
	}
	return ""
}

// part is either literal text (ref == nil) or a reference. For Arg refs,
// segs holds the path split on dots.
type part struct {
	text string
	ref  *Ref
	segs []string
}

// Template is a parsed template. It is immutable and safe for concurrent use.
type Template struct {
	src   string
	parts []part
}

// SyntaxError reports a template that does not parse.
type SyntaxError struct {
	Offset int    // byte offset of the problem in the template
	Msg    string // the complete message
}

func (e *SyntaxError) Error() string { return e.Msg }

// Parse parses a template.
func Parse(s string) (*Template, error) {
	t := &Template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i += 2
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i += 2
		case c == '}':
			return nil, &SyntaxError{Offset: i, Msg: fmt.Sprintf("unmatched '}' at offset %d; write '}}' for a literal '}'", i)}
		case c == '{':
			end := strings.IndexAny(s[i+1:], "{}")
			if end < 0 || s[i+1+end] == '{' {
				return nil, &SyntaxError{Offset: i, Msg: fmt.Sprintf("unclosed '{' at offset %d; write '{{' for a literal '{'", i)}
			}
			body := s[i+1 : i+1+end]
			p, err := parseRef(body, i)
			if err != nil {
				return nil, err
			}
			flush()
			t.parts = append(t.parts, p)
			i += end + 2
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	return t, nil
}

func parseRef(body string, off int) (part, error) {
	unknown := func() error {
		return &SyntaxError{Offset: off, Msg: fmt.Sprintf("unknown reference {%s}; expected {args}, {args.NAME} or {credentials.NAME}", body)}
	}
	switch {
	case body == "args":
		return part{ref: &Ref{Kind: WholeArgs, Offset: off}}, nil
	case strings.HasPrefix(body, "args."):
		name := body[len("args."):]
		segs := strings.Split(name, ".")
		for _, seg := range segs {
			if seg == "" {
				return part{}, &SyntaxError{Offset: off, Msg: fmt.Sprintf("reference {%s} at offset %d has an empty name between dots", body, off)}
			}
			if !validName(seg, false) {
				return part{}, &SyntaxError{Offset: off, Msg: fmt.Sprintf("reference {%s} at offset %d: argument names may hold only letters, digits, '_', '-' and ':'", body, off)}
			}
		}
		return part{ref: &Ref{Kind: Arg, Name: name, Offset: off}, segs: segs}, nil
	case body == "credentials" || body == "credentials.":
		return part{}, &SyntaxError{Offset: off, Msg: fmt.Sprintf("reference {%s} at offset %d must name a credential: {credentials.NAME}", body, off)}
	case strings.HasPrefix(body, "credentials."):
		name := body[len("credentials."):]
		if !validName(name, true) {
			return part{}, &SyntaxError{Offset: off, Msg: fmt.Sprintf("reference {%s} at offset %d: a credential name may hold only letters, digits, '_', '-', ':' and '.'", body, off)}
		}
		return part{ref: &Ref{Kind: Credential, Name: name, Offset: off}}, nil
	}
	return part{}, unknown()
}

// validName reports whether s is a non-empty run of letters, digits, '_',
// '-', ':' and, when dots is set, '.'.
func validName(s string, dots bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == ':':
		case c == '.' && dots:
		default:
			return false
		}
	}
	return true
}

// String returns the template's source text.
func (t *Template) String() string { return t.src }

// Refs lists the template's references in order of appearance, duplicates
// included.
func (t *Template) Refs() []Ref {
	var refs []Ref
	for _, p := range t.parts {
		if p.ref != nil {
			refs = append(refs, *p.ref)
		}
	}
	return refs
}

// Credentials lists the distinct credential names the template uses, in
// order of first appearance.
func (t *Template) Credentials() []string {
	var names []string
	seen := map[string]bool{}
	for _, p := range t.parts {
		if p.ref != nil && p.ref.Kind == Credential && !seen[p.ref.Name] {
			seen[p.ref.Name] = true
			names = append(names, p.ref.Name)
		}
	}
	return names
}

// IsWholeArgs reports whether the template is exactly {args}.
func (t *Template) IsWholeArgs() bool {
	return len(t.parts) == 1 && t.parts[0].ref != nil && t.parts[0].ref.Kind == WholeArgs
}

// IsLiteral reports whether the template has no references.
func (t *Template) IsLiteral() bool {
	for _, p := range t.parts {
		if p.ref != nil {
			return false
		}
	}
	return true
}
