package secret

import (
	"fmt"
	"log/slog"
)

// Placeholder is what a Value prints instead of itself.
const Placeholder = "[secret]"

// Value holds a resolved secret. It never prints itself: String, GoString,
// LogValue, Format and MarshalJSON all give Placeholder, so a value that
// ends up in a log line, an error or a JSON document by mistake shows
// nothing. Reveal returns the plaintext for the one place that needs it:
// rendering a request inside a connector.
type Value struct {
	s string
}

// NewValue wraps a plaintext secret.
func NewValue(s string) Value { return Value{s: s} }

// Reveal returns the plaintext. Call it only where the value leaves warden
// towards the system it authenticates to.
func (v Value) Reveal() string { return v.s }

// Empty reports whether the value is empty.
func (v Value) Empty() bool { return v.s == "" }

func (v Value) String() string               { return Placeholder }
func (v Value) GoString() string             { return "secret.Value(" + Placeholder + ")" }
func (v Value) LogValue() slog.Value         { return slog.StringValue(Placeholder) }
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Placeholder + `"`), nil }
func (v Value) MarshalText() ([]byte, error) { return []byte(Placeholder), nil }

// Format prints Placeholder whatever the verb (%d, %x, %q... included).
func (v Value) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(v.GoString()))
		return
	}
	_, _ = f.Write([]byte(Placeholder))
}

var (
	_ fmt.Stringer   = Value{}
	_ fmt.GoStringer = Value{}
	_ slog.LogValuer = Value{}
	_ fmt.Formatter  = Value{}
)
