package template

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/warden-dev/warden/internal/call"
)

// Data is what a template is rendered against.
type Data struct {
	// Args is the call's argument object.
	Args map[string]any
	// Credential resolves a credential by name. Its errors must not contain
	// the value (they cannot: there is none when it fails). It may be nil
	// when no credentials are available.
	Credential func(name string) (string, error)
}

// Escaper escapes one substituted value; literal text is never escaped. A
// nil Escaper leaves values as they are (headers, and query values that the
// caller encodes with url.Values).
type Escaper func(string) string

// PathSegment escapes a value for use inside one URL path segment, so that a
// value such as "a/b c" stays one segment ("a%2Fb%20c").
func PathSegment(s string) string { return url.PathEscape(s) }

// ArgError reports an {args.…} reference the call's arguments cannot fill.
// Path names the first part of the reference that failed ("args.repo" when
// the call has no repo at all).
type ArgError struct {
	Path    string // e.g. "args.repo"
	Problem string // empty when the argument is missing
}

func (e *ArgError) Error() string {
	if e.Problem == "" {
		return "missing argument " + e.Path
	}
	return "argument " + e.Path + " " + e.Problem
}

// CredentialError reports a credential that could not be resolved. It never
// holds a credential value.
type CredentialError struct {
	Name string
	Err  error // from Data.Credential; nil when no resolver was given
}

func (e *CredentialError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("credential %q is not available here", e.Name)
	}
	return fmt.Sprintf("credential %q: %v", e.Name, e.Err)
}

func (e *CredentialError) Unwrap() error { return e.Err }

// Render renders t against data, passing every substituted value through
// esc (nil: no escaping). A string argument renders as its text; any other
// argument as compact JSON. Errors are *ArgError or *CredentialError.
func Render(t *Template, data Data, esc Escaper) (string, error) {
	var b strings.Builder
	for i := range t.parts {
		p := &t.parts[i]
		if p.ref == nil {
			b.WriteString(p.text)
			continue
		}
		s, err := renderRef(p, data)
		if err != nil {
			return "", err
		}
		if esc != nil {
			s = esc(s)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// RenderValue renders t for a position that holds a JSON value, such as a
// leaf of a request body. A template that is exactly one argument reference
// ({args} or {args.x}) yields the argument's own value, so numbers, booleans,
// objects and arrays keep their JSON type; any other template yields the
// string Render would produce without escaping.
func RenderValue(t *Template, data Data) (any, error) {
	if len(t.parts) == 1 && t.parts[0].ref != nil && t.parts[0].ref.Kind != Credential {
		p := &t.parts[0]
		if p.ref.Kind == WholeArgs {
			if data.Args == nil {
				return map[string]any{}, nil
			}
			return data.Args, nil
		}
		return lookup(data.Args, p.segs)
	}
	return Render(t, data, nil)
}

func renderRef(p *part, data Data) (string, error) {
	switch p.ref.Kind {
	case Credential:
		if data.Credential == nil {
			return "", &CredentialError{Name: p.ref.Name}
		}
		v, err := data.Credential(p.ref.Name)
		if err != nil {
			return "", &CredentialError{Name: p.ref.Name, Err: err}
		}
		return v, nil
	case WholeArgs:
		if data.Args == nil {
			return "{}", nil
		}
		return jsonText(data.Args, "args")
	default:
		v, err := lookup(data.Args, p.segs)
		if err != nil {
			return "", err
		}
		return text(v, p.ref.Path())
	}
}

// lookup walks segs into args. Digits index arrays.
func lookup(args map[string]any, segs []string) (any, error) {
	var cur any = args
	path := "args"
	for _, seg := range segs {
		next := path + "." + seg
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, &ArgError{Path: next}
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 {
				return nil, &ArgError{Path: path, Problem: fmt.Sprintf("is an array; %q is not an index", seg)}
			}
			if i >= len(c) {
				return nil, &ArgError{Path: next}
			}
			cur = c[i]
		default:
			return nil, &ArgError{Path: path, Problem: fmt.Sprintf("is %s, not an object, so it has no %q", call.KindOf(cur), seg)}
		}
		path = next
	}
	return cur, nil
}

// text renders one value the way a template substitutes it: a string as
// itself, anything else as compact JSON, integers without an exponent. path
// names the value in errors.
func text(v any, path string) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "null", nil
	case json.Number:
		return numberText(x, path)
	case float64:
		return floatText(x, path)
	case float32:
		return floatText(float64(x), path)
	case int:
		return strconv.FormatInt(int64(x), 10), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	}
	return jsonText(v, path)
}

func floatText(f float64, path string) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", &ArgError{Path: path, Problem: "is not a finite number"}
	}
	if f == math.Trunc(f) {
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	}
	b, _ := json.Marshal(f) // finite: cannot fail
	return string(b), nil
}

func numberText(n json.Number, path string) (string, error) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return s, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return "", &ArgError{Path: path, Problem: "is not a valid number"}
	}
	return floatText(f, path)
}

// JSON encodes v as compact JSON without HTML escaping, writing integral
// numbers without an exponent. It is how {args} and non-string values are
// rendered, and what a connector should use to send a rendered body.
func JSON(v any) ([]byte, error) {
	v, err := plain(v, 0)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func jsonText(v any, path string) (string, error) {
	b, err := JSON(v)
	if err != nil {
		return "", &ArgError{Path: path, Problem: "cannot be written as JSON: " + err.Error()}
	}
	return string(b), nil
}

// maxDepth bounds the nesting plain will copy; decoded JSON is shallower.
const maxDepth = 10000

// plain copies v, replacing integral floats with json.Numbers written
// without an exponent, so that 1e21 encodes as 1000000000000000000000.
func plain(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("value nests more than %d levels deep", maxDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			p, err := plain(e, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = p
		}
		return m, nil
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			p, err := plain(e, depth+1)
			if err != nil {
				return nil, err
			}
			l[i] = p
		}
		return l, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v is not a finite number", x)
		}
		if x == math.Trunc(x) {
			return json.Number(strconv.FormatFloat(x, 'f', -1, 64)), nil
		}
	case json.Number:
		s, err := numberText(x, "")
		if err != nil {
			return nil, fmt.Errorf("%q is not a valid number", string(x))
		}
		return json.Number(s), nil
	}
	return v, nil
}
