// Package allowlist parses and matches the egress allowlist entries of a
// sandboxed connector (`egress: [api.github.com, "*.example.org"]`). It is
// pure, so that config validation and the egress proxy share one parser.
package allowlist

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Rule is one parsed allowlist entry.
type Rule struct {
	Host     string // lower case; "*.x" matches names below x
	Port     int    // 0: 80 and 443; -1: any
	wildcard bool
}

// ParseRule parses an allowlist entry: a host name or "*." followed by one,
// optionally with ":PORT" or ":*".
func ParseRule(s string) (Rule, error) {
	host, port := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if port == "" {
			return Rule{}, fmt.Errorf("egress entry %q: empty port", s)
		}
	}
	r := Rule{Host: strings.ToLower(strings.TrimSuffix(host, "."))}
	switch {
	case port == "":
	case port == "*":
		r.Port = -1
	default:
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return Rule{}, fmt.Errorf("egress entry %q: port must be 1-65535 or *", s)
		}
		r.Port = p
	}
	name := r.Host
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		r.wildcard, name = true, rest
	}
	if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return Rule{}, fmt.Errorf("egress entry %q: list host names, not IP addresses", s)
	}
	if !ValidName(name) {
		return Rule{}, fmt.Errorf("egress entry %q: not a host name (letters, digits, '-' and '.', optionally starting with \"*.\")", s)
	}
	return r, nil
}

// ValidName says whether s is a host name: labels of letters, digits,
// '-' and '_', lower case.
func ValidName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Match says whether the rule allows host (lower case) and port.
func (r Rule) Match(host string, port int) bool {
	switch r.Port {
	case 0:
		if port != 80 && port != 443 {
			return false
		}
	case -1:
	default:
		if port != r.Port {
			return false
		}
	}
	if r.wildcard {
		return strings.HasSuffix(host, r.Host[1:]) // ".example.org"
	}
	return host == r.Host
}
