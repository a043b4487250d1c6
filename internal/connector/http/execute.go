package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/warden-dev/warden/internal/connector/template"
)

// render fills a map body for one call; where names the field in errors.
func (n *node) render(data template.Data, where string) (any, error) {
	switch {
	case n.tmpl != nil:
		v, err := template.RenderValue(n.tmpl, data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		return v, nil
	case n.fields != nil:
		m := make(map[string]any, len(n.fields))
		for k, c := range n.fields {
			v, err := c.render(data, where+"."+k)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case n.isList:
		l := make([]any, len(n.list))
		for i, c := range n.list {
			v, err := c.render(data, fmt.Sprintf("%s[%d]", where, i))
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	}
	return n.value, nil
}

// Execute performs action with args. creds resolves a credential by name; it
// is called at most once per name per call, and only for names the action
// uses. A response with any status is returned as a Result. Errors are
// template errors (*template.ArgError, *template.CredentialError, wrapped),
// ErrUnknownAction, ErrUnsafeValue, or *Error for a request that failed.
func (c *Connector) Execute(ctx context.Context, action string, args map[string]any, creds func(name string) (string, error)) (*Result, error) {
	a, ok := c.actions[action]
	if !ok {
		return nil, fmt.Errorf("http connector %q: %w %q", c.name, ErrUnknownAction, action)
	}
	if args == nil {
		args = map[string]any{}
	}
	var secrets []string // resolved values, to scrub from error text
	cache := map[string]string{}
	data := template.Data{Args: args, Credential: func(name string) (string, error) {
		if v, ok := cache[name]; ok {
			return v, nil
		}
		if creds == nil {
			return "", errors.New("no credential resolver")
		}
		v, err := creds(name)
		if err != nil {
			return "", err
		}
		cache[name] = v
		secrets = append(secrets, v)
		return v, nil
	}}
	failf := func(format string, a ...any) error {
		return fmt.Errorf("http connector %q action %q: "+format, append([]any{c.name, action}, a...)...)
	}

	req, err := c.build(ctx, a, data, failf)
	if err != nil {
		return nil, err
	}

	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req = req.WithContext(tctx)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, c.requestError(ctx, tctx, a.name, req, err, secrets)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, c.requestError(ctx, tctx, a.name, req, fmt.Errorf("reading the response body: %w", err), secrets)
	}
	res := &Result{Status: resp.StatusCode, Headers: selectHeaders(resp.Header)}
	if int64(len(body)) > c.maxBody {
		body = body[:c.maxBody]
		res.Truncated = true
	}
	res.Body = decodeBody(resp.Header.Get("Content-Type"), body, res.Truncated)
	return res, nil
}

// build renders the request for one call.
func (c *Connector) build(ctx context.Context, a *action, data template.Data, failf func(string, ...any) error) (*nethttp.Request, error) {
	u := *c.base
	basePath := strings.TrimSuffix(c.base.EscapedPath(), "/")
	p := basePath
	if a.path != nil {
		rendered, err := template.Render(a.path, data, template.PathSegment)
		if err != nil {
			return nil, failf("path: %w", err)
		}
		rendered = escapeInvalid(rendered)
		for seg := range strings.SplitSeq(rendered, "/") {
			if s, _ := url.PathUnescape(seg); s == "." || s == ".." {
				return nil, failf("path %q: %w: the rendered path has a %q segment", a.pathSrc, ErrUnsafeValue, s)
			}
		}
		p = basePath + rendered
	}
	if p != "" {
		dec, err := url.PathUnescape(p)
		if err != nil {
			return nil, failf("path %q: %w: the rendered path is not valid", a.pathSrc, ErrUnsafeValue)
		}
		u.Path, u.RawPath = dec, p
	}

	q := c.base.Query()
	for _, prm := range a.query {
		v, err := template.Render(prm.tmpl, data, nil)
		if err != nil {
			return nil, failf("query.%s: %w", prm.name, err)
		}
		q.Set(prm.name, v)
	}
	u.RawQuery = q.Encode()

	h := nethttp.Header{}
	for _, hd := range a.headers {
		v, err := template.Render(hd.tmpl, data, nil)
		if err != nil {
			return nil, failf("headers.%s: %w", hd.name, err)
		}
		if !validHeaderValue(v) {
			return nil, failf("headers.%s: %w: the rendered value contains a control character", hd.name, ErrUnsafeValue)
		}
		h.Set(hd.name, v)
	}

	var body []byte
	switch {
	case a.wholeArgs:
		b, err := template.JSON(data.Args)
		if err != nil {
			return nil, failf("body: args cannot be sent as JSON: %v", err)
		}
		body = b
	case a.body != nil:
		v, err := a.body.render(data, "body")
		if err != nil {
			return nil, failf("%w", err)
		}
		b, err := template.JSON(v)
		if err != nil {
			return nil, failf("body cannot be sent as JSON: %v", err)
		}
		body = b
	}
	if body != nil && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", "warden")
	}

	if !c.allowed(&u) {
		return nil, &Error{Connector: c.name, Action: a.name, Msg: fmt.Sprintf("host %q is not in allow_hosts", hostKey(&u)), err: ErrHostNotAllowed}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := nethttp.NewRequestWithContext(ctx, a.method, u.String(), rd)
	if err != nil {
		return nil, &Error{Connector: c.name, Action: a.name, Msg: "building the request failed"}
	}
	req.Header = h
	return req, nil
}

// requestError turns a failed request into an *Error whose text is
// scrubbed of the call's credential values. parent is the caller's context,
// ctx the one carrying the connector's timeout.
func (c *Connector) requestError(parent, ctx context.Context, action string, req *nethttp.Request, err error, secrets []string) error {
	e := &Error{Connector: c.name, Action: action}
	target := req.Method + " " + scrub(req.URL.String(), secrets)
	var refused *refusedError
	switch {
	case errors.As(err, &refused):
		e.Msg, e.err = refused.msg, refused.err
	case errors.Is(parent.Err(), context.DeadlineExceeded):
		e.Msg, e.err = target+": the caller's deadline passed", context.DeadlineExceeded
	case errors.Is(parent.Err(), context.Canceled):
		e.Msg, e.err = target+": canceled by the caller", context.Canceled
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		e.Msg, e.err = fmt.Sprintf("%s: timed out after %v", target, c.timeout), context.DeadlineExceeded
	default:
		e.Msg = scrub(err.Error(), secrets)
	}
	return e
}

// scrub replaces every credential value, and the forms a URL or error would
// quote it in, with a placeholder.
func scrub(s string, secrets []string) string {
	var forms []string
	for _, v := range secrets {
		if v == "" {
			continue
		}
		q := strconv.Quote(v) // error text often quotes a URL with %q
		forms = append(forms, v, url.PathEscape(v), url.QueryEscape(v), q[1:len(q)-1])
	}
	// Longest first, so a value is not half-replaced by a shorter one
	// inside it.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	for _, f := range forms {
		s = strings.ReplaceAll(s, f, "[REDACTED]")
	}
	return s
}

// escapeInvalid percent-encodes any byte that may not appear in a URL path
// as it is, leaving valid escapes alone. Rendered values are already
// escaped; this covers literal text in the path template.
func escapeInvalid(p string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		ch := p[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9',
			strings.IndexByte("-._~!$&'()*+,;=:@/", ch) >= 0:
			b.WriteByte(ch)
		case ch == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]):
			b.WriteByte(ch)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
