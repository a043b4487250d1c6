package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds how many YAML nodes one file may expand to (aliases can
// multiply a small file), so that a hostile file cannot exhaust memory.
const maxNodes = 1 << 18

// maxDepth bounds how deeply values may nest (a self-referencing alias
// would otherwise nest forever).
const maxDepth = 64

// decoder walks yaml.Node trees into typed config, recording every problem
// with its position instead of stopping at the first.
type decoder struct {
	file  string
	errs  *Errors
	nodes int
	depth int
	// tooDeep is set once the depth error has been reported.
	tooDeep bool
}

func (d *decoder) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: d.file}
	}
	return Pos{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	*d.errs = append(*d.errs, &Error{Pos: d.pos(n), Msg: fmt.Sprintf(format, args...)})
}

// resolve follows aliases and counts nodes against the budget.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	d.nodes++
	if d.nodes == maxNodes {
		d.errorf(n, "document expands to more than %d nodes (alias bomb?)", maxNodes)
	}
	if d.nodes >= maxNodes {
		return nil
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!int":
			return "the integer " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "something else"
}

// field is one key a mapping may hold.
type field struct {
	key      string
	required bool
	set      func(v *yaml.Node)
}

// object decodes a mapping whose keys must come from fields. Unknown,
// duplicate and missing required keys are errors. It returns false when n is
// not a mapping at all.
func (d *decoder) object(n *yaml.Node, what string, fields ...field) bool {
	n = d.resolve(n)
	if n == nil {
		return false
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping, got %s", what, kindName(n))
		return false
	}
	seen := make(map[string]bool, len(fields))
	for k, v := range d.pairs(n, what) {
		var f *field
		for i := range fields {
			if fields[i].key == k.Value {
				f = &fields[i]
				break
			}
		}
		if f == nil {
			d.errorf(k, "unknown key %q in %s; expected one of: %s", k.Value, what, keyList(fields))
			continue
		}
		seen[k.Value] = true
		f.set(v)
	}
	for _, f := range fields {
		if f.required && !seen[f.key] {
			d.errorf(n, "%s is missing required key %q", what, f.key)
		}
	}
	return true
}

func keyList(fields []field) string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return strings.Join(keys, ", ")
}

// pairs yields a mapping's keys and values in order, reporting non-string
// keys, merge keys and duplicates.
func (d *decoder) pairs(n *yaml.Node, what string) func(yield func(*yaml.Node, *yaml.Node) bool) {
	return func(yield func(*yaml.Node, *yaml.Node) bool) {
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := d.resolve(n.Content[i]), n.Content[i+1]
			if k == nil {
				return
			}
			if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
				d.errorf(k, "keys in %s must be strings, got %s", what, kindName(k))
				continue
			}
			if k.Tag == "!!merge" {
				d.errorf(k, "merge keys (<<) are not supported in %s; write the keys out", what)
				continue
			}
			if seen[k.Value] {
				d.errorf(k, "duplicate key %q in %s", k.Value, what)
				continue
			}
			seen[k.Value] = true
			if !yield(k, v) {
				return
			}
		}
	}
}

// str decodes a string scalar.
func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	n = d.resolve(n)
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		d.errorf(n, "%s must be a string, got %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

// strInto returns a setter that decodes a string into dst.
func (d *decoder) strInto(dst *string, what string) func(*yaml.Node) {
	return func(n *yaml.Node) {
		if s, ok := d.str(n, what); ok {
			*dst = s
		}
	}
}

// strList decodes a string or a list of strings.
func (d *decoder) strList(n *yaml.Node, what string) []string {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		if s, ok := d.str(n, what); ok {
			return []string{s}
		}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a string or a list of strings, got %s", what, kindName(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		if s, ok := d.str(c, what+" entry"); ok {
			out = append(out, s)
		}
	}
	return out
}

// stringMap decodes a mapping of strings to strings.
func (d *decoder) stringMap(n *yaml.Node, what string, check func(k, v *yaml.Node, val string)) map[string]string {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping of names to strings, got %s", what, kindName(n))
		return nil
	}
	out := map[string]string{}
	for k, v := range d.pairs(n, what) {
		s, ok := d.str(v, fmt.Sprintf("%s.%s", what, k.Value))
		if !ok {
			continue
		}
		out[k.Value] = s
		if check != nil {
			check(k, d.resolve(v), s)
		}
	}
	return out
}

// number decodes an integer or float scalar.
func (d *decoder) number(n *yaml.Node, what string) (float64, bool) {
	n = d.resolve(n)
	if n == nil {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		var v any
		if err := n.Decode(&v); err == nil {
			switch x := v.(type) {
			case int:
				return float64(x), true
			case int64:
				return float64(x), true
			case uint64:
				return float64(x), true
			case float64:
				if !math.IsNaN(x) && !math.IsInf(x, 0) {
					return x, true
				}
			}
		}
	}
	d.errorf(n, "%s must be a number, got %s", what, kindName(n))
	return 0, false
}

// integer decodes a non-negative integer scalar.
func (d *decoder) integer(n *yaml.Node, what string) (int64, bool) {
	n = d.resolve(n)
	if n == nil {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		var v int64
		if err := n.Decode(&v); err == nil && v >= 0 {
			return v, true
		}
	}
	d.errorf(n, "%s must be a non-negative integer, got %s", what, kindName(n))
	return 0, false
}

// boolean decodes true or false.
func (d *decoder) boolean(n *yaml.Node, what string) (bool, bool) {
	n = d.resolve(n)
	if n == nil {
		return false, false
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, true
		}
	}
	d.errorf(n, "%s must be true or false, got %s", what, kindName(n))
	return false, false
}

// value decodes any YAML value into JSON-shaped Go values: map[string]any,
// []any, string, bool, nil, int64 or float64.
func (d *decoder) value(n *yaml.Node, what string) (any, bool) {
	n = d.resolve(n)
	if n == nil {
		return nil, false
	}
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		if !d.tooDeep {
			d.errorf(n, "%s nests more than %d levels deep (a recursive alias?)", what, maxDepth)
		}
		d.tooDeep = true
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		ok := true
		for k, v := range d.pairs(n, what) {
			x, good := d.value(v, what+"."+k.Value)
			ok = ok && good
			m[k.Value] = x
		}
		return m, ok
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		ok := true
		for i, c := range n.Content {
			x, good := d.value(c, fmt.Sprintf("%s[%d]", what, i))
			ok = ok && good
			l = append(l, x)
		}
		return l, ok
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err == nil {
				return b, true
			}
		case "!!int":
			if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
				return i, true
			}
			var f float64
			if err := n.Decode(&f); err == nil {
				return f, true
			}
		case "!!float":
			var f float64
			if err := n.Decode(&f); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f, true
			}
		case "!!str":
			return n.Value, true
		}
		d.errorf(n, "%s: unsupported value %q (tag %s)", what, n.Value, n.Tag)
		return nil, false
	}
	d.errorf(n, "%s: unsupported YAML node", what)
	return nil, false
}
