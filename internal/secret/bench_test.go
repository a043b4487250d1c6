package secret

import (
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// BenchmarkRedact: redaction cost per MiB of response with 10 and 100
// active secrets, beside a plain copy of the same bytes.
func BenchmarkRedact(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 {}\":,"
	doc := make([]byte, 1<<20)
	for i := range doc {
		doc[i] = alphabet[rng.IntN(len(alphabet))]
	}
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		dst := make([]byte, len(doc))
		for b.Loop() {
			copy(dst, doc)
		}
	})
	for _, n := range []int{10, 100} {
		r := NewRedactor()
		for i := range n {
			r.Add(fmt.Sprintf("s%d", i), NewValue(fmt.Sprintf("secret-%d-%016x", i, rng.Uint64())))
		}
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				_ = r.RedactBytes(doc)
			}
		})
		b.Run(fmt.Sprintf("stream/secrets=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				w := r.Writer(io.Discard)
				for i := 0; i < len(doc); i += 32 << 10 {
					_, _ = w.Write(doc[i:min(len(doc), i+32<<10)])
				}
				_ = w.Close()
			}
		})
	}
}
