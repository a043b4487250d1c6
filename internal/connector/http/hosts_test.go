package http

import (
	"net/url"
	"testing"
)

func TestAllowed(t *testing.T) {
	tests := []struct {
		allow []string
		url   string
		want  bool
	}{
		{[]string{"api.example.com"}, "https://api.example.com/x", true},
		{[]string{"api.example.com"}, "https://API.Example.com/x", true},
		{[]string{"api.example.com"}, "https://api.example.com:443/x", true},
		{[]string{"api.example.com"}, "http://api.example.com:80/x", true},
		{[]string{"api.example.com"}, "https://api.example.com:8443/x", false},
		{[]string{"api.example.com"}, "https://evil.com/api.example.com", false},
		{[]string{"api.example.com"}, "https://api.example.com.evil.com/", false},
		{[]string{"*.example.org"}, "https://a.example.org/", true},
		{[]string{"*.example.org"}, "https://a.b.example.org/", true},
		{[]string{"*.example.org"}, "https://example.org/", false},
		{[]string{"*.example.org"}, "https://a.example.org:8443/", false},
		{[]string{"*.example.org:*"}, "https://a.example.org:8443/", true},
		{[]string{"127.0.0.1:8080"}, "http://127.0.0.1:8080/", true},
		{[]string{"127.0.0.1:8080"}, "http://127.0.0.1:8081/", false},
		{[]string{"[::1]:8080"}, "http://[::1]:8080/", true},
		{[]string{"api.example.com"}, "ftp://api.example.com/", false},
		{nil, "https://api.example.com/", false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		c := &Connector{allow: tt.allow}
		if got := c.allowed(u); got != tt.want {
			t.Errorf("allow %v, %s: got %v, want %v (host key %q)", tt.allow, tt.url, got, tt.want, hostKey(u))
		}
	}
}

func TestEscapeInvalid(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/a/b", "/a/b"},
		{"/a b/{x}", "/a%20b/%7Bx%7D"},
		{"/already%2Fescaped", "/already%2Fescaped"},
		{"/bad%zz%4", "/bad%25zz%254"},
		{"/ü", "/%C3%BC"},
		{"/keep:@!$&'()*+,;=-._~", "/keep:@!$&'()*+,;=-._~"},
	}
	for _, tt := range tests {
		if got := escapeInvalid(tt.in); got != tt.want {
			t.Errorf("escapeInvalid(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScrub(t *testing.T) {
	tests := []struct {
		in      string
		secrets []string
		want    string
	}{
		{`Get "http://h/x?k=a+b%2Fc": refused`, []string{"a b/c"}, `Get "http://h/x?k=[REDACTED]": refused`},
		{`Get "http://h/a%20b%2Fc": refused`, []string{"a b/c"}, `Get "http://h/[REDACTED]": refused`},
		{`quoted "say \"hi\""`, []string{`say "hi"`}, `quoted "[REDACTED]"`},
		{"nothing here", []string{"", "zzz"}, "nothing here"},
		{"abcdef abc", []string{"abc", "abcdef"}, "[REDACTED] [REDACTED]"},
	}
	for _, tt := range tests {
		if got := scrub(tt.in, tt.secrets); got != tt.want {
			t.Errorf("scrub(%q, %q) = %q, want %q", tt.in, tt.secrets, got, tt.want)
		}
	}
}
