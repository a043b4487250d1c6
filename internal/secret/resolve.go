package secret

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrUnsupported is returned for references whose provider is not built in
// yet (vault://, local://): such a call fails closed.
var ErrUnsupported = errors.New("secret provider not available")

// Resolve returns the value a reference points at. It supports env:// and
// file://; the error never contains the value.
func Resolve(ctx context.Context, r Ref) (string, error) {
	switch r.Scheme {
	case "env":
		v, ok := os.LookupEnv(r.Path)
		if !ok || v == "" {
			return "", fmt.Errorf("secret %s: environment variable is not set", r)
		}
		return v, nil
	case "file":
		b, err := os.ReadFile(r.Path)
		if err != nil {
			return "", fmt.Errorf("secret %s: cannot read the file", r)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret %s: the file is empty", r)
		}
		return v, nil
	}
	return "", fmt.Errorf("secret %s: %w for scheme %s", r, ErrUnsupported, r.Scheme)
}

// Scrub replaces every occurrence of each value in s with
// [REDACTED:<name>]. Values shorter than 4 bytes are not scrubbed: they
// would shred unrelated text and protect nothing.
func Scrub(s string, values map[string]string) string {
	for name, v := range values {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[REDACTED:"+name+"]")
		}
	}
	return s
}
