package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/sandbox/egress/allowlist"
)

func TestParseTarget(t *testing.T) {
	for _, c := range []struct {
		in   string
		host string
		port int
		ok   bool
	}{
		{"api.github.com:443", "api.github.com", 443, true},
		{"API.GitHub.com.:443", "api.github.com", 443, true},
		{"[::1]:80", "::1", 80, true},
		{"[::ffff:169.254.169.254]:80", "169.254.169.254", 80, true},
		{"10.0.0.1:22", "10.0.0.1", 22, true},
		{"example.com", "", 0, false},
		{"example.com:0", "", 0, false},
		{"example.com:65536", "", 0, false},
		{"example.com:+80", "", 0, false},
		{"example.com:080", "", 0, false},
		{"user@example.com:443", "", 0, false},
		{"example.com/x:443", "", 0, false},
		{"[fe80::1%eth0]:443", "", 0, false},
		{":443", "", 0, false},
		{"exa mple.com:443", "", 0, false},
	} {
		host, port, err := ParseTarget(c.in)
		if (err == nil) != c.ok || host != c.host || port != c.port {
			t.Errorf("ParseTarget(%q) = %q, %d, %v; want %q, %d, ok=%v", c.in, host, port, err, c.host, c.port, c.ok)
		}
	}
}

func TestRules(t *testing.T) {
	p, err := New(Options{Allow: []string{"api.github.com", "*.example.org", "db.internal.test:5432", "any.test:*"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host string
		port int
		want bool
	}{
		{"api.github.com", 443, true},
		{"api.github.com", 80, true},
		{"api.github.com", 22, false},
		{"github.com", 443, false},
		{"evil-api.github.com", 443, false},
		{"a.example.org", 443, true},
		{"a.b.example.org", 443, true},
		{"example.org", 443, false},
		{"badexample.org", 443, false},
		{"db.internal.test", 5432, true},
		{"db.internal.test", 443, false},
		{"any.test", 9999, true},
	} {
		if got := p.allowed(c.host, c.port); got != c.want {
			t.Errorf("allowed(%s, %d) = %v, want %v", c.host, c.port, got, c.want)
		}
	}
	for _, bad := range []string{"", "10.0.0.1", "[::1]", "*.", "a..b", "exa mple.com", "x.com:0", "x.com:", "x.com:abc", "-x.com"} {
		if _, err := allowlist.ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q) accepted", bad)
		}
	}
}

func TestBlocked(t *testing.T) {
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true}, {"10.1.2.3", true}, {"172.16.0.1", true}, {"192.168.1.1", true},
		{"169.254.169.254", true}, {"100.64.0.1", true}, {"0.0.0.0", true}, {"224.0.0.1", true},
		{"::1", true}, {"fd00::1", true}, {"fd00:ec2::254", true}, {"fe80::1", true}, {"::ffff:127.0.0.1", true},
		{"::ffff:10.0.0.1", true}, {"64:ff9b::a00:1", true}, {"2002:a00:1::", true},
		{"8.8.8.8", false}, {"140.82.112.3", false}, {"2606:4700::1111", false},
	} {
		if got := Blocked(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Blocked(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
}

type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// proxyRequest sends raw to a proxy serving on a fresh listener and returns
// the status line and the rest.
func proxyRequest(t *testing.T, o Options, raw string) (string, string, []Attempt) {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	defer func() { ln.Close(); p.Close() }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, raw)
	br := bufio.NewReader(c)
	status, _ := br.ReadString('\n')
	if strings.Contains(status, " 200 ") && strings.HasPrefix(raw, "CONNECT") {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	}
	rest, _ := io.ReadAll(br)
	return strings.TrimSpace(status), string(rest), p.Attempts()
}

func TestProxy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream:"+r.URL.Path) }))
	defer srv.Close()
	sa := netip.MustParseAddrPort(srv.Listener.Addr().String())
	res := resolver{"ok.test": {sa.Addr()}, "mixed.test": {netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("10.0.0.1")}}
	loose := func(a netip.Addr) bool { return a == sa.Addr() || !Blocked(a) }
	allow := []string{fmt.Sprintf("ok.test:%d", sa.Port()), "mixed.test", "*.github.com"}
	for _, c := range []struct {
		name, raw  string
		status     string
		body       string
		allowed    bool
		reasonPart string
	}{
		{"connect allowed", fmt.Sprintf("CONNECT ok.test:%d HTTP/1.1\r\nHost: ok.test\r\n\r\n", sa.Port()), "200", "upstream:/", true, "allowed"},
		{"absolute GET allowed", fmt.Sprintf("GET http://ok.test:%d/p HTTP/1.1\r\nHost: ok.test\r\n\r\n", sa.Port()), "200", "upstream:/p", true, "allowed"},
		{"not listed", "CONNECT other.test:443 HTTP/1.1\r\n\r\n", "403", "", false, "not an allowed egress host"},
		{"wrong port", "CONNECT ok.test:22 HTTP/1.1\r\n\r\n", "403", "", false, "not an allowed egress host"},
		{"metadata literal", "CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n", "403", "", false, "private, loopback"},
		{"ula literal", "CONNECT [fd00::1]:443 HTTP/1.1\r\n\r\n", "403", "", false, "private, loopback"},
		{"public literal not listed", "CONNECT 8.8.8.8:443 HTTP/1.1\r\n\r\n", "403", "", false, "not an allowed egress host"},
		{"one private answer refuses the name", "CONNECT mixed.test:443 HTTP/1.1\r\n\r\n", "403", "", false, "resolves to 10.0.0.1"},
		{"unresolvable", "CONNECT x.github.com:443 HTTP/1.1\r\n\r\n", "403", "", false, "could not be resolved"},
		{"garbage", "HELLO\r\n\r\n", "400", "", false, "malformed"},
		{"origin-form GET", "GET / HTTP/1.1\r\nHost: ok.test\r\n\r\n", "400", "", false, "only CONNECT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, rest, attempts := proxyRequest(t, Options{Allow: allow, Resolver: res, AllowAddr: loose}, c.raw)
			if !strings.Contains(status, " "+c.status+" ") {
				t.Fatalf("status %q, want %s (rest %q)", status, c.status, rest)
			}
			if c.body != "" && !strings.Contains(rest, c.body) {
				t.Errorf("body %q, want %q", rest, c.body)
			}
			if len(attempts) != 1 || attempts[0].Allowed != c.allowed || !strings.Contains(attempts[0].Reason, c.reasonPart) {
				t.Errorf("attempts %+v, want one allowed=%v with %q", attempts, c.allowed, c.reasonPart)
			}
		})
	}
	// An allowed connection that cannot be audited is not made.
	status, _, attempts := proxyRequest(t, Options{Allow: allow, Resolver: res, AllowAddr: loose, Audit: func(Attempt) error { return errors.New("store down") }},
		fmt.Sprintf("CONNECT ok.test:%d HTTP/1.1\r\n\r\n", sa.Port()))
	if !strings.Contains(status, " 403 ") || attempts[0].Allowed || !strings.Contains(attempts[0].Reason, "audited") {
		t.Fatalf("unaudited connection: %q %+v", status, attempts)
	}
	// Without the test's exception, the same local server is refused.
	status, _, attempts = proxyRequest(t, Options{Allow: allow, Resolver: res}, fmt.Sprintf("CONNECT ok.test:%d HTTP/1.1\r\n\r\n", sa.Port()))
	if !strings.Contains(status, " 403 ") || attempts[0].Allowed {
		t.Fatalf("strict policy let loopback through: %q %+v", status, attempts)
	}
}

// TestRedactedAttempts: a secret a command puts into a target, in any case
// (host names are lower-cased), and one straddling where a malformed
// target's message is clipped, shows neither in Audit's attempts nor in
// the response.
func TestRedactedAttempts(t *testing.T) {
	const secret = "S3cretT0kenValue"
	redact := func(s string) string {
		// Case-insensitive for the secret: the process redactor the exec
		// connector passes knows it as given and lower-cased, which is
		// all the proxy can show.
		i := strings.Index(strings.ToLower(s), strings.ToLower(secret))
		if i < 0 {
			return s
		}
		return s[:i] + "[REDACTED:tok]" + s[i+len(secret):]
	}
	var audited []Attempt
	o := Options{Allow: []string{"*.example"}, Resolver: resolver{}, Redact: redact,
		Audit: func(a Attempt) error { audited = append(audited, a); return nil }}
	for _, raw := range []string{
		"CONNECT " + secret + ".example:443 HTTP/1.1\r\n\r\n",
		"CONNECT " + secret + ".other:443 HTTP/1.1\r\n\r\n",
		"CONNECT " + strings.Repeat("a", 70) + secret + "/x:443 HTTP/1.1\r\n\r\n",
		"GET http://" + secret + ".example/ HTTP/1.1\r\n\r\n",
	} {
		audited = nil
		status, rest, attempts := proxyRequest(t, o, raw)
		all := fmt.Sprintf("%s %s %+v %+v", status, rest, attempts, audited)
		if len(audited) != 1 || len(attempts) != 1 {
			t.Fatalf("%q: attempts %+v audited %+v", raw, attempts, audited)
		}
		low := strings.ToLower(all)
		for _, part := range []string{strings.ToLower(secret), strings.ToLower(secret[:8]), strings.ToLower(secret[8:])} {
			if strings.Contains(low, part) {
				t.Errorf("%q leaks %q: %s", raw, part, all)
			}
		}
		if !strings.Contains(all, "[REDACTED") {
			t.Errorf("%q: no placeholder in %s", raw, all)
		}
	}
}

// TestMaxConns: beyond MaxConns open connections, a client gets 503 at
// once.
func TestMaxConns(t *testing.T) {
	p, err := New(Options{Allow: []string{"x.test"}, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	defer func() { ln.Close(); p.Close() }()
	// Two connections held open: the proxy's whole allowance.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(line, " 503 ") {
		t.Fatalf("third connection: %q %v", line, err)
	}
	if len(p.Attempts()) != 0 {
		t.Errorf("attempts recorded: %+v", p.Attempts())
	}
}
