package egress

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/sandbox/egress/allowlist"
)

// FuzzParseTarget: the CONNECT target parser never panics, and what it
// accepts is a clean host and a valid port that round-trip.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"api.github.com:443", "[::1]:80", "10.0.0.1:22", "x:0", "a@b:1", "[fe80::1%25eth0]:1", ":", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := ParseTarget(s)
		if err != nil {
			return
		}
		if port < 1 || port > 65535 || host == "" || strings.ContainsAny(host, "@/ %\r\n") {
			t.Fatalf("ParseTarget(%q) = %q, %d", s, host, port)
		}
		if _, err := netip.ParseAddr(host); err != nil && host != strings.ToLower(host) {
			t.Fatalf("host %q not lower case", host)
		}
	})
}

// FuzzParseRule: allowlist entries never panic the parser.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"api.github.com", "*.example.org", "x:443", "x:*", "10.0.0.1", "*."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := allowlist.ParseRule(s)
		if err == nil && r.Host == "" {
			t.Fatalf("ParseRule(%q) accepted an empty host", s)
		}
	})
}
