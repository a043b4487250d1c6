package call

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a unique, time-ordered identifier with a prefix, such as
// "call_06b9m2…": 48 bits of milliseconds then 80 random bits, so ids sort
// by creation time and cannot be guessed.
func NewID(prefix string, now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails on supported platforms
	var s strings.Builder
	s.WriteString(prefix)
	s.WriteByte('_')
	s.WriteString(idEncoding.EncodeToString(b[:]))
	return s.String()
}
