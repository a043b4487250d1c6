package policy

import (
	"fmt"
	"unicode/utf8"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
)

// check tests one constraint against a call's arguments and returns what is
// wrong, or "" when the arguments satisfy it. A missing argument violates
// the constraint: a bound the call avoids by omission is no bound.
func check(c *config.Constraint, args map[string]any) string {
	v, ok := lookup(args, c.Segments)
	if !ok {
		return c.Path + " is missing"
	}
	if c.Min != nil || c.Max != nil {
		f, ok := toFloat(v)
		if !ok {
			return fmt.Sprintf("%s must be a number, got %s", c.Path, call.KindOf(v))
		}
		if c.Min != nil && f < *c.Min {
			return fmt.Sprintf("got %v, below min %v", v, *c.Min)
		}
		if c.Max != nil && f > *c.Max {
			return fmt.Sprintf("got %v, above max %v", v, *c.Max)
		}
	}
	if c.In != nil && !contains(c.In, v) {
		return fmt.Sprintf("got %s, not in the allowed list", show(v))
	}
	if c.NotIn != nil && contains(c.NotIn, v) {
		return fmt.Sprintf("got %s, which is not allowed", show(v))
	}
	if c.Regexp != nil || c.MaxLength != nil {
		s, ok := v.(string)
		if !ok {
			return fmt.Sprintf("%s must be a string, got %s", c.Path, call.KindOf(v))
		}
		if c.MaxLength != nil && int64(utf8.RuneCountInString(s)) > *c.MaxLength {
			return fmt.Sprintf("length %d exceeds max_length %d", utf8.RuneCountInString(s), *c.MaxLength)
		}
		if c.Regexp != nil && !c.Regexp.MatchString(s) {
			return fmt.Sprintf("got %s, which does not match the pattern", show(v))
		}
	}
	return ""
}

func lookup(args map[string]any, path []string) (any, bool) {
	var cur any = args
	for _, seg := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// contains compares scalars by value; numbers compare numerically whatever
// their Go type.
func contains(list []any, v any) bool {
	f, isNum := toFloat(v)
	for _, e := range list {
		if isNum {
			if g, ok := toFloat(e); ok && g == f {
				return true
			}
			continue
		}
		if e == v {
			return true
		}
	}
	return false
}

// show prints a value for a reason, bounded so that a huge argument cannot
// flood logs and audit records.
func show(v any) string {
	s := fmt.Sprintf("%q", fmt.Sprint(v))
	if _, ok := v.(string); !ok {
		s = fmt.Sprint(v)
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
