package schema

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Validate checks args against the schema and returns nil or a
// *ValidationError for the first failing value, rooted at "args". Checks run
// in a fixed order (type, const, enum, the type's own keywords; required
// properties in listed order, then properties by name), so the same input
// always reports the same error.
func (s *Schema) Validate(v any) error {
	if err := s.validate(v, "args"); err != nil {
		return err
	}
	return nil
}

func (s *Schema) validate(v any, path string) *ValidationError {
	fail := func(format string, a ...any) *ValidationError {
		return &ValidationError{Path: path, Message: fmt.Sprintf(format, a...)}
	}
	if s.always != nil {
		if *s.always {
			return nil
		}
		return fail("not allowed")
	}
	kind, num := jsonType(v)
	switch kind {
	case "":
		return fail("unsupported value of Go type %T", v)
	case "invalid number":
		return fail("is not a valid number")
	}
	if len(s.types) > 0 && !s.typeOK(kind, num) {
		got := article(kind)
		if kind == "number" {
			got = numText(num)
		}
		return fail("must be %s, got %s", typeList(s.types), got)
	}
	if s.hasConst && !equal(v, s.constant) {
		return fail("must be %s", jsonText(s.constant))
	}
	if s.hasEnum {
		found := false
		for _, e := range s.enum {
			if equal(v, e) {
				found = true
				break
			}
		}
		if !found {
			return fail("must be one of %s", enumText(s.enum))
		}
	}
	switch kind {
	case "number":
		if s.minimum != nil && num.Cmp(s.minimum.n) < 0 {
			return fail("must be >= %s", s.minimum.text)
		}
		if s.maximum != nil && num.Cmp(s.maximum.n) > 0 {
			return fail("must be <= %s", s.maximum.text)
		}
		if s.exclMin != nil && num.Cmp(s.exclMin.n) <= 0 {
			return fail("must be > %s", s.exclMin.text)
		}
		if s.exclMax != nil && num.Cmp(s.exclMax.n) >= 0 {
			return fail("must be < %s", s.exclMax.text)
		}
	case "string":
		str := v.(string)
		if s.minLength >= 0 || s.maxLength >= 0 {
			n := int64(utf8.RuneCountInString(str))
			if s.minLength >= 0 && n < s.minLength {
				return fail("must be at least %s long", plural(s.minLength, "character"))
			}
			if s.maxLength >= 0 && n > s.maxLength {
				return fail("must be at most %s long", plural(s.maxLength, "character"))
			}
		}
		if s.pattern != nil && !s.pattern.MatchString(str) {
			return fail("must match the pattern %q", s.pattern.String())
		}
	case "array":
		l := v.([]any)
		n := int64(len(l))
		if s.minItems >= 0 && n < s.minItems {
			return fail("must have at least %s", plural(s.minItems, "item"))
		}
		if s.maxItems >= 0 && n > s.maxItems {
			return fail("must have at most %s", plural(s.maxItems, "item"))
		}
		if s.items != nil {
			for i, e := range l {
				if err := s.items.validate(e, path+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
		}
	case "object":
		m := v.(map[string]any)
		for _, name := range s.required {
			if _, ok := m[name]; !ok {
				return &ValidationError{Path: member(path, name), Message: "required"}
			}
		}
		for _, name := range s.propNames {
			if e, ok := m[name]; ok {
				if err := s.properties[name].validate(e, member(path, name)); err != nil {
					return err
				}
			}
		}
		if s.additional != nil {
			var extra []string
			for name := range m {
				if _, ok := s.properties[name]; !ok {
					extra = append(extra, name)
				}
			}
			if len(extra) > 0 {
				slices.Sort(extra)
				for _, name := range extra {
					if s.additional.always != nil { // false: none allowed
						allowed := "none are allowed"
						if len(s.propNames) > 0 {
							allowed = "expected one of: " + strings.Join(s.propNames, ", ")
						}
						return &ValidationError{Path: member(path, name), Message: "unknown property; " + allowed}
					}
					if err := s.additional.validate(m[name], member(path, name)); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func (s *Schema) typeOK(kind string, num *big.Float) bool {
	for _, t := range s.types {
		if t == kind || (t == "integer" && kind == "number" && num.IsInt()) {
			return true
		}
	}
	return false
}

// jsonType returns the JSON type of v ("" for a Go value that is not JSON)
// and, for numbers, the value.
func jsonType(v any) (string, *big.Float) {
	switch v.(type) {
	case nil:
		return "null", nil
	case string:
		return "string", nil
	case bool:
		return "boolean", nil
	case []any:
		return "array", nil
	case map[string]any:
		return "object", nil
	}
	if !isNumber(v) {
		return "", nil
	}
	n, ok := toBig(v)
	if !ok || n.IsInf() {
		return "invalid number", nil
	}
	return "number", n
}

// equal is JSON equality: numbers by value, objects by members, arrays in
// order.
func equal(a, b any) bool {
	ka, na := jsonType(a)
	kb, nb := jsonType(b)
	if ka != kb || ka == "" || ka == "invalid number" {
		return false
	}
	switch ka {
	case "null":
		return true
	case "number":
		return na.Cmp(nb) == 0
	case "string":
		return a.(string) == b.(string)
	case "boolean":
		return a.(bool) == b.(bool)
	case "array":
		x, y := a.([]any), b.([]any)
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		x, y := a.(map[string]any), b.(map[string]any)
		if len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equal(xv, yv) {
				return false
			}
		}
		return true
	}
}

// member appends a property name to a path: args.name, or args["odd key"]
// when the name is not a plain identifier.
func member(path, name string) string {
	plain := name != ""
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			plain = false
			break
		}
	}
	if plain {
		return path + "." + name
	}
	return path + "[" + strconv.Quote(name) + "]"
}

func article(t string) string {
	switch t {
	case "object", "array", "integer":
		return "an " + t
	case "null":
		return "null"
	}
	return "a " + t
}

func typeList(types []string) string {
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = article(t)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.FormatInt(n, 10) + " " + word + "s"
}

// maxEnumShown bounds how many allowed values a message lists.
const maxEnumShown = 10

func enumText(l []any) string {
	parts := make([]string, 0, min(len(l), maxEnumShown+1))
	for i, e := range l {
		if i == maxEnumShown {
			parts = append(parts, fmt.Sprintf("… (%d more)", len(l)-maxEnumShown))
			break
		}
		parts = append(parts, jsonText(e))
	}
	return strings.Join(parts, ", ")
}

// jsonText writes a schema value (an enum member or const) for a message.
func jsonText(v any) string {
	if n, ok := toBig(v); ok && isNumber(v) {
		return numText(n)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
