package secret

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzRedact: the redactor never panics, and a registered value planted
// anywhere in random bytes — whole, or written to the stream in random
// chunks — is gone afterwards.
func FuzzRedact(f *testing.F) {
	f.Add([]byte("hello world"), "s3cr3t-value", uint16(3), uint8(7))
	f.Add([]byte("ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), "AKIAIOSFODNN7EXAMPLE", uint16(0), uint8(1))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nabc"), "eyJhbGciOi", uint16(10), uint8(2))
	f.Add([]byte{0, 1, 2, 0xff}, "\x00\x01\x02\x03", uint16(1), uint8(3))
	f.Fuzz(func(t *testing.T, text []byte, value string, at uint16, chunk uint8) {
		if len(value) < MinValueLen || strings.ContainsAny(value, "[]") || strings.Contains("[REDACTED:v]", value) {
			t.Skip() // a value that is part of its own placeholder cannot be removed by replacing it
		}
		r := NewRedactor()
		r.Add("v", NewValue(value))
		pos := int(at) % (len(text) + 1)
		in := append(append(append([]byte{}, text[:pos]...), value...), text[pos:]...)
		if at%2 == 1 {
			// Long enough that the stream cuts before Close, near the value.
			in = append(bytes.Repeat([]byte{'.'}, 2*r.m.Load().maxLen-int(at)%64), in...)
		}

		out := r.RedactBytes(in)
		if bytes.Contains(out, []byte(value)) {
			t.Fatalf("RedactBytes(%q) = %q still holds %q", in, out, value)
		}
		_ = r.Redact(string(text))
		_ = r.RedactJSON(in)

		var buf bytes.Buffer
		w := r.Writer(&buf)
		n := int(chunk)%16 + 1
		if len(in) > 1000 {
			n = n*int(chunk) + 1
		}
		for i := 0; i < len(in); i += n {
			if _, err := w.Write(in[i:min(len(in), i+n)]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(buf.Bytes(), []byte(value)) {
			t.Fatalf("stream in chunks of %d: %q still holds %q", n, buf.Bytes(), value)
		}
	})
}
