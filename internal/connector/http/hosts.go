package http

import (
	"fmt"
	nethttp "net/http"
	"net/url"
	"path"
	"strings"
)

// refusedError is returned by checkRedirect and found again in the client's
// error.
type refusedError struct {
	msg string
	err error
}

func (e *refusedError) Error() string { return e.msg }

func (c *Connector) checkRedirect(req *nethttp.Request, via []*nethttp.Request) error {
	if len(via) > MaxRedirects {
		return &refusedError{msg: fmt.Sprintf("stopped after %d redirects", MaxRedirects), err: ErrTooManyRedirects}
	}
	if prev := via[len(via)-1]; prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
		return &refusedError{msg: fmt.Sprintf("redirect from https to %s://%s refused", req.URL.Scheme, hostKey(req.URL)), err: ErrHostNotAllowed}
	}
	if !c.allowed(req.URL) {
		return &refusedError{msg: fmt.Sprintf("redirect to host %q refused: not in allow_hosts", hostKey(req.URL)), err: ErrHostNotAllowed}
	}
	return nil
}

// hostKey is the host as AllowHosts patterns match it: lower case, with the
// port only when it is not the scheme's default.
func hostKey(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if port == "" || (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		return host
	}
	return host + ":" + port
}

func (c *Connector) allowed(u *url.URL) bool {
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	key := hostKey(u)
	for _, g := range c.allow {
		if g == key {
			return true
		}
		if ok, _ := path.Match(g, key); ok {
			return true
		}
	}
	return false
}
