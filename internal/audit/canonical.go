package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// encoder appends canonical JSON to buf. It is written by hand, rather than
// built on encoding/json, so that the rules in Record.Canonical are spelled
// out in one place and cannot drift with the standard library's choices.
type encoder struct {
	buf   []byte
	comma bool // whether the next key or element needs a leading comma
}

func (e *encoder) begin() {
	e.sep()
	e.buf = append(e.buf, '{')
	e.comma = false
}

func (e *encoder) end() {
	e.buf = append(e.buf, '}')
	e.comma = true
}

func (e *encoder) sep() {
	if e.comma {
		e.buf = append(e.buf, ',')
	}
}

func (e *encoder) key(k string) {
	e.sep()
	e.buf = appendString(e.buf, k)
	e.buf = append(e.buf, ':')
	e.comma = false
}

func (e *encoder) raw(s string) {
	e.sep()
	e.buf = append(e.buf, s...)
	e.comma = true
}

func (e *encoder) str(s string) {
	e.sep()
	e.buf = appendString(e.buf, s)
	e.comma = true
}

func (e *encoder) strs(ss []string) {
	e.sep()
	e.buf = append(e.buf, '[')
	for i, s := range ss {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendString(e.buf, s)
	}
	e.buf = append(e.buf, ']')
	e.comma = true
}

func (e *encoder) int(n int64) {
	e.sep()
	e.buf = strconv.AppendInt(e.buf, n, 10)
	e.comma = true
}

func (e *encoder) time(t time.Time) error {
	// Outside these years RFC 3339 text does not parse back (encoding/json
	// refuses them too), so such a record could never be verified.
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("year %d is outside 0-9999", y)
	}
	e.sep()
	e.buf = append(e.buf, '"')
	e.buf = t.UTC().AppendFormat(e.buf, time.RFC3339Nano)
	e.buf = append(e.buf, '"')
	e.comma = true
	return nil
}

// float writes f as the shortest text that parses back to the same float64
// (in exponent form only for very large or small magnitudes, as
// encoding/json chooses), so that it decodes to exactly what was hashed.
func (e *encoder) float(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("%v is not representable in JSON", f)
	}
	e.sep()
	if f == 0 {
		f = 0 // -0 and 0 are one value
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	e.buf = strconv.AppendFloat(e.buf, f, format, -1, 64)
	e.comma = true
	return nil
}

// args writes a JSON document re-canonicalised: keys sorted, whitespace
// removed, strings re-escaped, numbers as their literal text. Empty input
// and null are both null.
func (e *encoder) args(raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		e.raw("null")
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more than one JSON value")
	}
	e.sep()
	e.value(v)
	e.comma = true
	return nil
}

// value writes a value produced by encoding/json decoding into any with
// UseNumber. Duplicate object keys have already been resolved by the decoder
// (the last one wins, as everywhere encoding/json is used).
func (e *encoder) value(v any) {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case json.Number:
		e.buf = append(e.buf, x...)
	case string:
		e.buf = appendString(e.buf, x)
	case []any:
		e.buf = append(e.buf, '[')
		for i, el := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.value(el)
		}
		e.buf = append(e.buf, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		e.buf = append(e.buf, '{')
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = appendString(e.buf, k)
			e.buf = append(e.buf, ':')
			e.value(x[k])
		}
		e.buf = append(e.buf, '}')
	default:
		// encoding/json produces nothing else; reaching here is a bug.
		panic(fmt.Sprintf("audit: canonical: unexpected %T", v))
	}
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string with minimal escaping.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			// Written as the character, not an escape, so that decoding
			// and re-encoding gives the same bytes.
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript consumers;
		// encoding/json escapes them too.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
