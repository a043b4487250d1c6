// Package schema validates a call's arguments against an action's
// input_schema, written in a documented subset of JSON Schema (draft 2020-12
// semantics).
//
// Supported keywords:
//
//	type                 a type name or an array of them: object, array, string,
//	                     number, integer, boolean, null
//	properties, required, additionalProperties (a boolean or a schema)
//	items                one schema for every element (not the tuple form)
//	enum, const          compared as JSON values (1 equals 1.0)
//	minimum, maximum, exclusiveMinimum, exclusiveMaximum   (numbers, not the
//	                     draft-04 boolean form)
//	minLength, maxLength (counted in Unicode code points), pattern (RE2,
//	                     unanchored as JSON Schema specifies)
//	minItems, maxItems
//	description, title, default, examples, $schema, $comment   (annotations)
//
// Sub-schemas may also be the booleans true (anything) and false (nothing).
//
// Compile fails closed: any other keyword ("format", "oneOf", "$ref",
// "patternProperties"…) is an error, never silently ignored, because a
// constraint that looks enforced but is not is worse than none. As in JSON
// Schema, a keyword constrains only values of its own type: minLength says
// nothing about a number.
//
// Arguments are the values encoding/json produces (map[string]any, []any,
// string, bool, nil, float64 or json.Number) or warden's normalized form
// (int64 for integers); other Go integer and float types are accepted too.
//
// The package is pure: no I/O, no knowledge of config files or connectors.
package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/warden-dev/warden/internal/call"
)

// Schema is a compiled schema. It is immutable and safe for concurrent use.
type Schema struct {
	always     *bool // set for a boolean schema: true accepts, false rejects
	types      []string
	properties map[string]*Schema
	propNames  []string // sorted, for a deterministic first error
	required   []string
	additional *Schema // nil: any additional property is allowed
	items      *Schema
	enum       []any
	hasEnum    bool
	constant   any
	hasConst   bool
	minimum    *bound
	maximum    *bound
	exclMin    *bound
	exclMax    *bound
	minLength  int64 // -1: unset
	maxLength  int64
	pattern    *regexp.Regexp
	minItems   int64
	maxItems   int64
}

// bound is a numeric limit with the text it was written as.
type bound struct {
	n    *big.Float
	text string
}

// CompileError reports a schema warden cannot enforce. Pointer is the JSON
// pointer of the offending keyword, such as "/properties/name/minLength".
type CompileError struct {
	Pointer string
	Msg     string
}

func (e *CompileError) Error() string {
	p := e.Pointer
	if p == "" {
		p = "(root)"
	}
	return p + ": " + e.Msg
}

// ValidationError names the first argument that fails its schema.
type ValidationError struct {
	Path    string // e.g. "args.repo.name", "args.tags[2]"
	Message string // e.g. "must be <= 10", "required"
}

func (e *ValidationError) Error() string { return e.Path + ": " + e.Message }

// Types are the JSON Schema type names.
var Types = []string{"object", "array", "string", "number", "integer", "boolean", "null"}

// maxDepth bounds schema nesting; real schemas are a handful of levels deep.
const maxDepth = 512

// Compile compiles a schema. It returns a *CompileError for the first
// problem found, visiting keywords in sorted order.
func Compile(v map[string]any) (*Schema, error) {
	c := compiler{}
	s := c.object(v, "", 0)
	if c.err != nil {
		return nil, c.err
	}
	return s, nil
}

// MustCompile is Compile for schemas written in Go code; it panics on error.
func MustCompile(v map[string]any) *Schema {
	s, err := Compile(v)
	if err != nil {
		panic(err)
	}
	return s
}

type compiler struct {
	err *CompileError
}

func (c *compiler) fail(ptr, format string, a ...any) {
	if c.err == nil {
		c.err = &CompileError{Pointer: ptr, Msg: fmt.Sprintf(format, a...)}
	}
}

// pointerToken escapes a property name for a JSON pointer (RFC 6901).
func pointerToken(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// sub compiles a sub-schema: an object or a boolean.
func (c *compiler) sub(v any, ptr string, depth int) *Schema {
	switch x := v.(type) {
	case bool:
		return &Schema{always: &x}
	case map[string]any:
		return c.object(x, ptr, depth)
	}
	c.fail(ptr, "a schema must be an object or a boolean, got %s", call.KindOf(v))
	return nil
}

func (c *compiler) object(m map[string]any, ptr string, depth int) *Schema {
	if depth > maxDepth {
		c.fail(ptr, "schema nests more than %d levels deep", maxDepth)
		return nil
	}
	s := &Schema{minLength: -1, maxLength: -1, minItems: -1, maxItems: -1}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		kp := ptr + "/" + pointerToken(k)
		switch k {
		case "type":
			s.types = c.types(v, kp)
		case "properties":
			props, ok := v.(map[string]any)
			if !ok {
				c.fail(kp, "properties must be an object mapping names to schemas, got %s", call.KindOf(v))
				continue
			}
			s.properties = map[string]*Schema{}
			for name := range props {
				s.propNames = append(s.propNames, name)
			}
			sort.Strings(s.propNames)
			for _, name := range s.propNames {
				s.properties[name] = c.sub(props[name], kp+"/"+pointerToken(name), depth+1)
			}
		case "required":
			s.required = c.strings(v, kp, "required")
		case "additionalProperties":
			s.additional = c.sub(v, kp, depth+1)
			if s.additional != nil && s.additional.always != nil && *s.additional.always {
				s.additional = nil // true: the default
			}
		case "items":
			if _, isList := v.([]any); isList {
				c.fail(kp, "items must be a schema; the array (tuple) form is not supported")
				continue
			}
			s.items = c.sub(v, kp, depth+1)
		case "enum":
			l, ok := v.([]any)
			if !ok || len(l) == 0 {
				c.fail(kp, "enum must be a non-empty array, got %s", call.KindOf(v))
				continue
			}
			for i, e := range l {
				if err := checkValue(e, 0); err != "" {
					c.fail(kp+"/"+strconv.Itoa(i), "%s", err)
				}
			}
			s.enum, s.hasEnum = l, true
		case "const":
			if err := checkValue(v, 0); err != "" {
				c.fail(kp, "%s", err)
			}
			s.constant, s.hasConst = v, true
		case "minimum":
			s.minimum = c.number(v, kp, k)
		case "maximum":
			s.maximum = c.number(v, kp, k)
		case "exclusiveMinimum":
			s.exclMin = c.number(v, kp, k)
		case "exclusiveMaximum":
			s.exclMax = c.number(v, kp, k)
		case "minLength":
			s.minLength = c.count(v, kp, k)
		case "maxLength":
			s.maxLength = c.count(v, kp, k)
		case "minItems":
			s.minItems = c.count(v, kp, k)
		case "maxItems":
			s.maxItems = c.count(v, kp, k)
		case "pattern":
			p, ok := v.(string)
			if !ok {
				c.fail(kp, "pattern must be a string, got %s", call.KindOf(v))
				continue
			}
			re, err := regexp.Compile(p)
			if err != nil {
				c.fail(kp, "pattern %q is not a valid RE2 regular expression: %v", p, err)
				continue
			}
			s.pattern = re
		case "description", "title", "$schema", "$comment":
			if _, ok := v.(string); !ok {
				c.fail(kp, "%s must be a string, got %s", k, call.KindOf(v))
			}
		case "default":
			// An annotation; warden does not fill in defaults.
		case "examples":
			if _, ok := v.([]any); !ok {
				c.fail(kp, "examples must be an array, got %s", call.KindOf(v))
			}
		case "format", "$ref", "$defs", "definitions", "allOf", "anyOf", "oneOf", "not",
			"if", "then", "else", "patternProperties", "propertyNames", "dependentRequired",
			"dependentSchemas", "dependencies", "prefixItems", "contains", "minContains", "maxContains",
			"uniqueItems", "multipleOf", "minProperties", "maxProperties", "unevaluatedProperties",
			"unevaluatedItems", "contentEncoding", "contentMediaType", "$id", "$anchor", "$dynamicRef":
			c.fail(kp, "keyword %q is not supported by warden's schema validator; remove it or express the constraint with the supported keywords", k)
		default:
			c.fail(kp, "unknown keyword %q", k)
		}
	}
	if s.additional != nil && s.additional.always != nil && !*s.additional.always {
		for i, name := range s.required {
			if _, ok := s.properties[name]; !ok {
				c.fail(fmt.Sprintf("%s/required/%d", ptr, i), "required property %q is not in properties and additionalProperties is false, so no value can be valid", name)
			}
		}
	}
	return s
}

func (c *compiler) types(v any, ptr string) []string {
	var names []string
	switch x := v.(type) {
	case string:
		names = []string{x}
	case []any:
		if len(x) == 0 {
			c.fail(ptr, "type must not be an empty array")
			return nil
		}
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				c.fail(fmt.Sprintf("%s/%d", ptr, i), "type names must be strings, got %s", call.KindOf(e))
				return nil
			}
			if slices.Contains(names, s) {
				c.fail(fmt.Sprintf("%s/%d", ptr, i), "type %q is listed twice", s)
				return nil
			}
			names = append(names, s)
		}
	default:
		c.fail(ptr, "type must be a string or an array of strings, got %s", call.KindOf(v))
		return nil
	}
	for i, n := range names {
		if !slices.Contains(Types, n) {
			p := ptr
			if _, isList := v.([]any); isList {
				p = fmt.Sprintf("%s/%d", ptr, i)
			}
			c.fail(p, "unknown type %q; expected one of: %s", n, strings.Join(Types, ", "))
			return nil
		}
	}
	return names
}

func (c *compiler) strings(v any, ptr, what string) []string {
	l, ok := v.([]any)
	if !ok {
		c.fail(ptr, "%s must be an array of strings, got %s", what, call.KindOf(v))
		return nil
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			c.fail(fmt.Sprintf("%s/%d", ptr, i), "%s entries must be strings, got %s", what, call.KindOf(e))
			return nil
		}
		if slices.Contains(out, s) {
			c.fail(fmt.Sprintf("%s/%d", ptr, i), "%s lists %q twice", what, s)
			return nil
		}
		out = append(out, s)
	}
	return out
}

func (c *compiler) number(v any, ptr, what string) *bound {
	if _, isBool := v.(bool); isBool && (what == "exclusiveMinimum" || what == "exclusiveMaximum") {
		c.fail(ptr, "%s must be a number; the draft-04 boolean form is not supported (write the limit itself: %s: N)", what, what)
		return nil
	}
	n, ok := toBig(v)
	if !ok || n.IsInf() {
		c.fail(ptr, "%s must be a finite number, got %s", what, call.KindOf(v))
		return nil
	}
	return &bound{n: n, text: numText(n)}
}

func (c *compiler) count(v any, ptr, what string) int64 {
	n, ok := toBig(v)
	if ok && n.IsInt() && n.Sign() >= 0 {
		if i, acc := n.Int64(); acc == big.Exact {
			return i
		}
	}
	c.fail(ptr, "%s must be a non-negative integer, got %s", what, describe(v))
	return -1
}

// checkValue reports whether v is a JSON value this package can compare.
func checkValue(v any, depth int) string {
	if depth > maxDepth {
		return "value nests too deeply"
	}
	switch x := v.(type) {
	case nil, string, bool:
		return ""
	case map[string]any:
		for _, e := range x {
			if err := checkValue(e, depth+1); err != "" {
				return err
			}
		}
		return ""
	case []any:
		for _, e := range x {
			if err := checkValue(e, depth+1); err != "" {
				return err
			}
		}
		return ""
	}
	if n, ok := toBig(v); ok && !n.IsInf() {
		return ""
	}
	return fmt.Sprintf("unsupported value %s", describe(v))
}

// toBig converts a numeric value to an exact big.Float. json.Number is
// parsed with ample precision. NaN is not a number here.
func toBig(v any) (*big.Float, bool) {
	switch x := v.(type) {
	case int64:
		return new(big.Float).SetInt64(x), true
	case int:
		return new(big.Float).SetInt64(int64(x)), true
	case int32:
		return new(big.Float).SetInt64(int64(x)), true
	case int16:
		return new(big.Float).SetInt64(int64(x)), true
	case int8:
		return new(big.Float).SetInt64(int64(x)), true
	case uint64:
		return new(big.Float).SetUint64(x), true
	case uint:
		return new(big.Float).SetUint64(uint64(x)), true
	case uint32:
		return new(big.Float).SetUint64(uint64(x)), true
	case uint16:
		return new(big.Float).SetUint64(uint64(x)), true
	case uint8:
		return new(big.Float).SetUint64(uint64(x)), true
	case float64:
		if math.IsNaN(x) {
			return nil, false
		}
		return new(big.Float).SetFloat64(x), true
	case float32:
		if math.IsNaN(float64(x)) {
			return nil, false
		}
		return new(big.Float).SetFloat64(float64(x)), true
	case json.Number:
		f, _, err := big.ParseFloat(string(x), 10, 256, big.ToNearestEven)
		if err != nil {
			return nil, false
		}
		return f, true
	}
	return nil, false
}

func isNumber(v any) bool {
	switch v.(type) {
	case int64, int, int32, int16, int8, uint64, uint, uint32, uint16, uint8, float64, float32, json.Number:
		return true
	}
	return false
}

// numText writes n for a message: integers below 2^64 in magnitude without
// an exponent, anything else in the shortest form (a value such as 1e999999
// from an agent must not turn into a million digits).
func numText(n *big.Float) string {
	if n.IsInt() && n.MantExp(nil) <= 64 {
		return n.Text('f', 0)
	}
	return n.Text('g', -1)
}

// describe is call.KindOf with the value itself for scalars.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	}
	if n, ok := toBig(v); ok {
		return numText(n)
	}
	return call.KindOf(v)
}
