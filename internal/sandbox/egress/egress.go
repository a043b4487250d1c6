// Package egress is warden's filtering HTTP proxy for sandboxes: the only
// way out of a sandbox whose connector lists egress hosts.
//
// It understands CONNECT (any TCP protocol tunnelled, TLS included) and
// plain-HTTP requests in absolute form (GET http://host/path). For each it
// checks the target host against the allowlist, resolves the name itself,
// refuses when the name or any address it resolves to lies in a private,
// loopback, link-local, CGNAT, metadata, multicast or otherwise special
// range (Blocked), and dials the checked address — not the name again, so
// a DNS answer that changes between check and dial (rebinding) cannot slip
// through. Every attempt, allowed or refused, is passed to Options.Audit.
//
// The resolver and the address policy are injectable (Options.Resolver,
// Options.AllowAddr) so tests can point an allowlisted name at a local
// test server; the production default is net.DefaultResolver and Blocked,
// with no exceptions.
package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/sandbox/egress/allowlist"
)

// Resolver looks up a host's addresses. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Attempt is one connection attempt through the proxy.
type Attempt struct {
	Time    time.Time `json:"time"`
	Method  string    `json:"method"` // CONNECT or the HTTP method
	Host    string    `json:"host"`
	Port    int       `json:"port"`
	Allowed bool      `json:"allowed"`
	// Reason says why it was refused, or "allowed".
	Reason string `json:"reason"`
}

// Options configure a Proxy.
type Options struct {
	// Allow lists the host names the sandbox may reach: exact names
	// (api.github.com), "*.example.org" (any name below example.org, not
	// example.org itself), each optionally with ":PORT" or ":*". Without a
	// port only 80 and 443 are allowed.
	Allow []string
	// Resolver resolves names; nil: net.DefaultResolver.
	Resolver Resolver
	// AllowAddr says whether an address may be dialled; nil: !Blocked.
	// Tests use it to let one test server's loopback address through.
	AllowAddr func(netip.Addr) bool
	// Audit is told of every attempt, allowed or not, before an allowed
	// one is dialled. An error for an allowed attempt refuses it: a
	// connection that cannot be audited is not made (fail closed).
	Audit func(Attempt) error
	// DialTimeout bounds resolving and dialling; default 10s.
	DialTimeout time.Duration
	// MaxConns bounds the connections open through the proxy at once; a
	// client beyond it gets 503 at once. 0: no bound.
	MaxConns int
	// Redact, when set, scrubs secrets from what an Attempt shows (Host
	// and Reason) before Audit and Attempts see it: a command may put a
	// secret into a host name. It is given the target as the client sent
	// it (before host names are lower-cased) as well as lower-cased; it
	// should match secrets regardless of case.
	Redact func(string) string
}

// Proxy is a filtering HTTP proxy. It is safe for concurrent use.
type Proxy struct {
	rules     []allowlist.Rule
	resolver  Resolver
	allowAddr func(netip.Addr) bool
	audit     func(Attempt) error
	timeout   time.Duration
	maxConns  int
	redact    func(string) string
	active    int // client connections open; guarded by mu

	mu       sync.Mutex
	attempts []Attempt
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// New checks o and returns a proxy; Serve starts it.
func New(o Options) (*Proxy, error) {
	p := &Proxy{resolver: o.Resolver, allowAddr: o.AllowAddr, audit: o.Audit, timeout: o.DialTimeout, maxConns: o.MaxConns,
		redact: o.Redact, conns: map[net.Conn]struct{}{}}
	if p.redact == nil {
		p.redact = func(s string) string { return s }
	}
	var errs []error
	for _, s := range o.Allow {
		r, err := allowlist.ParseRule(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.rules = append(p.rules, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	if p.allowAddr == nil {
		p.allowAddr = func(a netip.Addr) bool { return !Blocked(a) }
	}
	if p.timeout <= 0 {
		p.timeout = 10 * time.Second
	}
	return p, nil
}

// Attempts returns every attempt so far.
func (p *Proxy) Attempts() []Attempt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Attempt(nil), p.attempts...)
}

// Serve accepts connections on ln until ln is closed or Close is called.
func (p *Proxy) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if !p.admit() {
			writeStatus(c, http.StatusServiceUnavailable, "warden egress: too many connections at once")
			c.Close()
			continue
		}
		if !p.track(c, true) {
			p.release()
			c.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.release()
			defer p.track(c, false)
			defer c.Close()
			p.handle(c)
		}()
	}
}

// admit counts a new client connection in, unless MaxConns are open.
func (p *Proxy) admit() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.maxConns > 0 && p.active >= p.maxConns {
		return false
	}
	p.active++
	return true
}

func (p *Proxy) release() {
	p.mu.Lock()
	p.active--
	p.mu.Unlock()
}

func (p *Proxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closed {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

// Close closes every connection and waits for their handlers. The caller
// closes the listener.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// record reports an attempt to Audit and keeps it for Attempts. For an
// allowed attempt, an audit failure turns it into a refusal.
func (p *Proxy) record(a Attempt) Attempt {
	a.Time = time.Now().UTC()
	if p.audit != nil {
		if err := p.audit(a); err != nil && a.Allowed {
			a.Allowed, a.Reason = false, "the connection could not be audited"
		}
	}
	p.mu.Lock()
	p.attempts = append(p.attempts, a)
	p.mu.Unlock()
	return a
}

// maxHeader bounds the request head a client may send.
const maxHeader = 16 << 10

func (p *Proxy) handle(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(io.LimitReader(c, maxHeader), 4096)
	req, err := http.ReadRequest(br)
	if err != nil {
		p.record(Attempt{Method: "?", Reason: "malformed proxy request"})
		writeStatus(c, http.StatusBadRequest, "malformed proxy request")
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var target string
	if req.Method == http.MethodConnect {
		target = req.RequestURI
	} else {
		if req.URL == nil || req.URL.Scheme != "http" || req.URL.Host == "" {
			p.record(Attempt{Method: req.Method, Reason: "only CONNECT and absolute http:// requests are proxied"})
			writeStatus(c, http.StatusBadRequest, "only CONNECT and absolute http:// requests are proxied")
			return
		}
		target = req.URL.Host
		if req.URL.Port() == "" {
			target = net.JoinHostPort(req.URL.Hostname(), "80")
		}
	}
	// What the attempt shows of the target is redacted before anything
	// is made of it: before a malformed one is clipped (which could cut a
	// secret in two), and in the client's own case as well as lower-cased.
	host, port, err := parseTarget(target, p.redact)
	if err != nil {
		p.record(Attempt{Method: req.Method, Reason: err.Error()})
		writeStatus(c, http.StatusBadRequest, err.Error())
		return
	}
	shown := host
	if raw, _, err := net.SplitHostPort(target); err == nil {
		if r := p.redact(raw); r != raw {
			shown = r
		} else {
			shown = p.redact(host)
		}
	}
	a := Attempt{Method: req.Method, Host: shown, Port: port}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	addrs, reason := p.check(ctx, host, shown, port)
	if addrs == nil {
		a.Reason = p.redact(reason)
		p.record(a)
		writeStatus(c, http.StatusForbidden, "warden egress: "+a.Reason)
		return
	}
	a.Allowed, a.Reason = true, "allowed"
	if a = p.record(a); !a.Allowed {
		writeStatus(c, http.StatusForbidden, "warden egress: "+a.Reason)
		return
	}
	up := p.connect(ctx, addrs, port)
	if up == nil {
		writeStatus(c, http.StatusBadGateway, "warden egress: the host could not be reached")
		return
	}
	defer up.Close()
	if !p.track(up, true) {
		return
	}
	defer p.track(up, false)
	if req.Method == http.MethodConnect {
		if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			return
		}
	} else {
		req.RequestURI = ""
		req.Header.Del("Proxy-Connection")
		req.Header.Del("Proxy-Authorization")
		req.Close = true
		if err := req.Write(up); err != nil {
			return
		}
	}
	// Bytes the client sent after its request head are already buffered.
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		if _, err := up.Write(b); err != nil {
			return
		}
	}
	pipe(c, up)
}

// check decides host:port and returns the addresses that may be dialled;
// on refusal it returns nil and the reason, which names the host as shown.
func (p *Proxy) check(ctx context.Context, host, shown string, port int) ([]netip.Addr, string) {
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if !p.allowAddr(ip) {
			return nil, "address " + ip.String() + " is in a private, loopback, link-local or reserved range"
		}
		if !p.allowed(host, port) {
			return nil, "IP address " + ip.String() + " is not an allowed egress host"
		}
		return []netip.Addr{ip}, ""
	}
	if !p.allowed(host, port) {
		return nil, fmt.Sprintf("host %s port %d is not an allowed egress host", shown, port)
	}
	addrs, err := p.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return nil, "host " + shown + " could not be resolved"
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
		if !p.allowAddr(addrs[i]) {
			// One bad answer refuses the name: a name that can point inside
			// is not reached at all.
			return nil, "host " + shown + " resolves to " + addrs[i].String() + ", in a private, loopback, link-local or reserved range"
		}
	}
	return addrs, ""
}

// connect dials the checked addresses in turn (never the name again, so a
// DNS answer that changes after the check cannot slip through).
func (p *Proxy) connect(ctx context.Context, addrs []netip.Addr, port int) net.Conn {
	var d net.Dialer
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return c
		}
	}
	return nil
}

func (p *Proxy) allowed(host string, port int) bool {
	for _, r := range p.rules {
		if r.Match(host, port) {
			return true
		}
	}
	return false
}

// ParseTarget parses a CONNECT target (authority form, host:port, IPv6 in
// brackets) into a lower-case host and a port. It refuses anything else:
// userinfo, paths, empty or non-numeric ports, bad host characters.
func ParseTarget(s string) (string, int, error) {
	return parseTarget(s, func(s string) string { return s })
}

// parseTarget is ParseTarget whose errors show the target as show makes it
// (redacted), clipped afterwards.
func parseTarget(s string, show func(string) string) (string, int, error) {
	if len(s) > 300 {
		return "", 0, errors.New("proxy target is too long")
	}
	clip := func(s string) string { return clip(show(s)) }
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("proxy target %q is not host:port", clip(s))
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || port[0] == '+' || port[0] == '0' {
		return "", 0, fmt.Errorf("proxy target %q has no valid port", clip(s))
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", 0, fmt.Errorf("proxy target %q has a zone", clip(s))
		}
		return ip.Unmap().String(), p, nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if !allowlist.ValidName(h) {
		return "", 0, fmt.Errorf("proxy target %q is not a valid host name", clip(s))
	}
	return h, p, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func writeStatus(c net.Conn, code int, msg string) {
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n",
		code, http.StatusText(code), len(msg)+1, msg)
}

// pipe copies both ways until either side ends.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
}
