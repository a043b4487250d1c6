// Package secret holds secret references (vault://, env://, file://,
// local://) and, as they land, the providers that resolve them and the
// redactor that scrubs their values from everything warden emits.
package secret

import (
	"fmt"
	"strings"
)

// Schemes are the reference schemes warden understands.
var Schemes = []string{"vault", "env", "file", "local"}

// Ref is a parsed secret reference. It names where a secret lives, never its
// value, so it is safe to log and to record in the audit trail.
type Ref struct {
	Scheme string // vault, env, file, local
	Path   string // vault: MOUNT/PATH; env: variable name; file: path; local: name
	Key    string // vault only: the key inside the secret's data
}

// String returns the reference in its canonical written form.
func (r Ref) String() string {
	s := r.Scheme + "://" + r.Path
	if r.Key != "" {
		s += "#" + r.Key
	}
	return s
}

// ParseRef parses a reference such as vault://secret/data/github#token.
func ParseRef(s string) (Ref, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return Ref{}, fmt.Errorf("secret reference %q has no scheme; expected vault://, env://, file:// or local://", s)
	}
	r := Ref{Scheme: scheme, Path: rest}
	switch scheme {
	case "vault":
		path, key, ok := strings.Cut(rest, "#")
		if !ok || key == "" {
			return Ref{}, fmt.Errorf("vault reference %q needs a key: vault://PATH#KEY", s)
		}
		if path == "" || strings.HasPrefix(path, "/") {
			return Ref{}, fmt.Errorf("vault reference %q needs a path such as secret/data/NAME", s)
		}
		r.Path, r.Key = path, key
	case "env":
		if !isEnvName(rest) {
			return Ref{}, fmt.Errorf("env reference %q must name a variable: env://NAME with letters, digits and _", s)
		}
	case "file":
		if rest == "" {
			return Ref{}, fmt.Errorf("file reference %q needs a path", s)
		}
	case "local":
		if !isLocalName(rest) {
			return Ref{}, fmt.Errorf("local reference %q must name a secret: local://NAME with letters, digits, '.', '_', '-' or '/'", s)
		}
	default:
		return Ref{}, fmt.Errorf("secret reference %q has unknown scheme %q; expected vault, env, file or local", s, scheme)
	}
	return r, nil
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func isLocalName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range s {
		switch {
		case c == '_', c == '-', c == '.', c == '/', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}
