// Package http is the http connector: it turns a named action and its
// arguments into one HTTP request to a configured API, sends it with
// credentials the agent never sees, and returns the response as a Result.
//
// The connector is configured once (New parses every template and reports
// every problem it finds) and is then immutable and safe for concurrent use.
// What it enforces on every call:
//
//   - Only hosts in AllowHosts are contacted, including on redirects (at most
//     5, never from https down to http). A host glob without a port matches
//     the scheme's default port only: "api.example.com" allows
//     https://api.example.com but not https://api.example.com:8443.
//   - Argument values are escaped for the place they land: a path value is one
//     path segment ("a/b c" becomes "a%2Fb%20c") and a rendered path may not
//     contain "." or ".." segments; query values go through url.Values;
//     header values may not contain control characters.
//   - The response body is read up to MaxResponseBytes and marked Truncated
//     beyond that.
//   - Errors never contain a credential value: the text of a failed request
//     (which may quote a URL holding one) is scrubbed of every value the call
//     resolved, in the forms a URL or header would carry it.
//
// A response with any status is a Result, not an error; the caller decides
// that a Status >= 400 is a failed call. Policy, audit and redacting secrets
// from results are the dispatcher's job, not this package's.
//
// This package does not read warden's YAML config; the composition root maps
// config onto Config.
package http

import (
	"context"
	"errors"
	"fmt"
	"maps"
	nethttp "net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/connector/template"
)

// Defaults for the Config fields left zero.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 1 << 20
	// MaxRedirects is how many redirects a call follows before failing.
	MaxRedirects = 5
)

// Config configures one http connector.
type Config struct {
	Name    string
	BaseURL string // required, http or https
	// AllowHosts are host globs ("*.example.org", "api.example.com:8443")
	// matched with path.Match against the lower-cased host, with ":port"
	// only when the port is not the scheme's default. Default: BaseURL's
	// host.
	AllowHosts       []string
	Timeout          time.Duration     // per call, including reading the body; default 30s
	MaxResponseBytes int64             // default 1 MiB
	Headers          map[string]string // templates, sent with every action
	Actions          map[string]Action
}

// Action configures one action of an http connector.
type Action struct {
	Method  string            // default GET
	Path    string            // template, appended to BaseURL's path; empty or starting with "/"
	Query   map[string]string // name → template
	Headers map[string]string // name → template; overrides a connector header of the same name
	// Body is nil, the string "{args}" (the arguments as JSON), or a
	// map[string]any whose string leaves are templates (nested maps and
	// arrays allowed; other leaves are sent as they are). A leaf that is
	// exactly one argument reference keeps the argument's JSON type.
	Body any
}

// Result is the outcome of a request that got a response.
type Result struct {
	Status int
	// Headers holds the response headers an agent may need: Content-Type,
	// Location, Retry-After, ETag, Link, X-RateLimit-* and RateLimit-*.
	Headers map[string]string
	// Body is the decoded JSON when the response is JSON, else the text
	// (invalid UTF-8 replaced); nil for an empty JSON body.
	Body      any
	Truncated bool // the body was longer than MaxResponseBytes and was cut
}

// Sentinel errors; test with errors.Is.
var (
	// ErrUnknownAction: the connector has no action of that name.
	ErrUnknownAction = errors.New("unknown action")
	// ErrHostNotAllowed: a request or redirect was refused because its host
	// is not in AllowHosts (or it would downgrade https to http).
	ErrHostNotAllowed = errors.New("host not allowed")
	// ErrTooManyRedirects: more than MaxRedirects redirects.
	ErrTooManyRedirects = errors.New("too many redirects")
	// ErrUnsafeValue: an argument rendered into something the connector
	// refuses to send (a "." or ".." path segment, a control character in
	// a header).
	ErrUnsafeValue = errors.New("unsafe value")
)

// Error is a request that failed: refused, timed out, or broken on the
// network. Its text is scrubbed of credential values. It wraps only a
// sentinel (ErrHostNotAllowed, ErrTooManyRedirects, context.DeadlineExceeded,
// context.Canceled) or nothing, never the underlying error, whose text could
// hold a credential.
type Error struct {
	Connector string
	Action    string
	Msg       string
	err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("http connector %q action %q: %s", e.Connector, e.Action, e.Msg)
}

func (e *Error) Unwrap() error { return e.err }

// Timeout reports whether the request ran out of time.
func (e *Error) Timeout() bool { return errors.Is(e.err, context.DeadlineExceeded) }

// Connector executes the actions of one http connector.
type Connector struct {
	name    string
	base    *url.URL
	allow   []string
	timeout time.Duration
	maxBody int64
	actions map[string]*action
	client  *nethttp.Client
}

type header struct {
	name string // canonical
	tmpl *template.Template
}

type param struct {
	name string
	tmpl *template.Template
}

type action struct {
	name      string
	method    string
	pathSrc   string
	path      *template.Template // nil: no path
	query     []param            // sorted by name
	headers   []header           // connector headers merged with the action's, sorted
	wholeArgs bool               // body "{args}"
	body      *node              // map body, or nil
	creds     []string
}

// node is a parsed map body.
type node struct {
	tmpl   *template.Template // a string leaf
	value  any                // any other leaf
	fields map[string]*node   // an object
	list   []*node            // an array (isList)
	isList bool
}

// New checks cfg, parses its templates and returns a connector. client may
// be nil for a client of the connector's own; a given client is copied, not
// modified, and its CheckRedirect is replaced by the connector's host check.
// The error lists every problem found, each naming the action and field.
func New(cfg Config, client *nethttp.Client) (*Connector, error) {
	var errs []error
	fail := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("http connector %q: "+format, append([]any{cfg.Name}, a...)...))
	}
	c := &Connector{name: cfg.Name, timeout: cfg.Timeout, maxBody: cfg.MaxResponseBytes, actions: map[string]*action{}}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	} else if c.timeout < 0 {
		fail("timeout %v must be positive", cfg.Timeout)
	}
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxResponseBytes
	} else if c.maxBody < 0 {
		fail("max response bytes %d must be positive", cfg.MaxResponseBytes)
	}

	base, err := url.Parse(cfg.BaseURL)
	switch {
	case cfg.BaseURL == "":
		fail("base_url is required")
	case err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "":
		fail("base_url %q must be an absolute http or https URL", cfg.BaseURL)
	case base.User != nil:
		fail("base_url must not hold credentials; send them in headers with {credentials.NAME}")
	case base.Fragment != "":
		fail("base_url %q must not have a #fragment", cfg.BaseURL)
	default:
		c.base = base
	}

	for _, g := range cfg.AllowHosts {
		g = strings.ToLower(strings.TrimSpace(g))
		if _, err := path.Match(g, ""); err != nil || g == "" {
			fail("allow_hosts entry %q is not a valid host glob", g)
			continue
		}
		c.allow = append(c.allow, g)
	}
	if c.base != nil {
		if len(cfg.AllowHosts) == 0 {
			c.allow = []string{hostKey(c.base)}
		} else if len(c.allow) == len(cfg.AllowHosts) && !c.allowed(c.base) {
			fail("base_url host %q is not in allow_hosts %v", hostKey(c.base), cfg.AllowHosts)
		}
	}

	var shared []header
	for _, name := range slices.Sorted(maps.Keys(cfg.Headers)) {
		h, err := parseHeader(name, cfg.Headers[name])
		if err != nil {
			fail("headers.%s: %w", name, err)
			continue
		}
		shared = append(shared, h)
	}

	for _, name := range slices.Sorted(maps.Keys(cfg.Actions)) {
		a, aerrs := parseAction(name, cfg.Actions[name], shared)
		for _, err := range aerrs {
			fail("action %q %w", name, err)
		}
		c.actions[name] = a
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	if client == nil {
		client = &nethttp.Client{}
	}
	cl := *client
	cl.CheckRedirect = c.checkRedirect
	c.client = &cl
	return c, nil
}

func parseHeader(name, src string) (header, error) {
	if !isToken(name) {
		return header{}, fmt.Errorf("%q is not a valid header name", name)
	}
	t, err := template.Parse(src)
	if err != nil {
		return header{}, err
	}
	return header{name: nethttp.CanonicalHeaderKey(name), tmpl: t}, nil
}

func parseAction(name string, cfg Action, shared []header) (*action, []error) {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	a := &action{name: name, method: strings.ToUpper(cfg.Method), pathSrc: cfg.Path}
	if a.method == "" {
		a.method = nethttp.MethodGet
	}
	if !isToken(a.method) {
		fail("method %q is not a valid HTTP method", cfg.Method)
	}

	if cfg.Path != "" {
		if !strings.HasPrefix(cfg.Path, "/") {
			fail("path %q must start with /", cfg.Path)
		}
		if strings.ContainsAny(cfg.Path, "?#") {
			fail("path %q must not contain '?' or '#'; put query parameters under query", cfg.Path)
		}
		t, err := template.Parse(cfg.Path)
		if err != nil {
			fail("path: %w", err)
		}
		a.path = t
	}

	for _, k := range slices.Sorted(maps.Keys(cfg.Query)) {
		if k == "" {
			fail("query has an empty parameter name")
			continue
		}
		t, err := template.Parse(cfg.Query[k])
		if err != nil {
			fail("query.%s: %w", k, err)
			continue
		}
		a.query = append(a.query, param{name: k, tmpl: t})
	}

	own := map[string]header{}
	for _, k := range slices.Sorted(maps.Keys(cfg.Headers)) {
		h, err := parseHeader(k, cfg.Headers[k])
		if err != nil {
			fail("headers.%s: %w", k, err)
			continue
		}
		own[h.name] = h
	}
	for _, h := range shared {
		if _, ok := own[h.name]; !ok {
			a.headers = append(a.headers, h)
		}
	}
	for _, h := range own {
		a.headers = append(a.headers, h)
	}
	slices.SortFunc(a.headers, func(x, y header) int { return strings.Compare(x.name, y.name) })

	switch b := cfg.Body.(type) {
	case nil:
	case string:
		t, err := template.Parse(b)
		if err != nil || !t.IsWholeArgs() {
			fail("body must be \"{args}\" or a map of templates, got %q", b)
			break
		}
		a.wholeArgs = true
	case map[string]any:
		n, err := parseBody(b, "body", 0)
		if err != nil {
			fail("%w", err)
		}
		a.body = n
	case map[string]string:
		m := make(map[string]any, len(b))
		for k, v := range b {
			m[k] = v
		}
		n, err := parseBody(m, "body", 0)
		if err != nil {
			fail("%w", err)
		}
		a.body = n
	default:
		fail("body must be \"{args}\" or a map of templates, got %T", cfg.Body)
	}

	seen := map[string]bool{}
	addCreds := func(t *template.Template) {
		if t == nil {
			return
		}
		for _, n := range t.Credentials() {
			if !seen[n] {
				seen[n] = true
				a.creds = append(a.creds, n)
			}
		}
	}
	addCreds(a.path)
	for _, q := range a.query {
		addCreds(q.tmpl)
	}
	for _, h := range a.headers {
		addCreds(h.tmpl)
	}
	a.body.walk(addCreds)
	slices.Sort(a.creds)
	return a, errs
}

// maxBodyDepth bounds the nesting of a configured map body.
const maxBodyDepth = 64

func parseBody(v any, where string, depth int) (*node, error) {
	if depth > maxBodyDepth {
		return nil, fmt.Errorf("%s nests more than %d levels deep", where, maxBodyDepth)
	}
	switch x := v.(type) {
	case string:
		t, err := template.Parse(x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		return &node{tmpl: t}, nil
	case map[string]any:
		n := &node{fields: make(map[string]*node, len(x))}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			c, err := parseBody(x[k], where+"."+k, depth+1)
			if err != nil {
				return nil, err
			}
			n.fields[k] = c
		}
		return n, nil
	case []any:
		n := &node{isList: true, list: make([]*node, len(x))}
		for i, e := range x {
			c, err := parseBody(e, fmt.Sprintf("%s[%d]", where, i), depth+1)
			if err != nil {
				return nil, err
			}
			n.list[i] = c
		}
		return n, nil
	}
	if _, err := template.JSON(v); err != nil {
		return nil, fmt.Errorf("%s: value of type %T cannot be sent as JSON", where, v)
	}
	return &node{value: v}, nil
}

func (n *node) walk(f func(*template.Template)) {
	if n == nil {
		return
	}
	if n.tmpl != nil {
		f(n.tmpl)
	}
	for _, k := range slices.Sorted(maps.Keys(n.fields)) {
		n.fields[k].walk(f)
	}
	for _, c := range n.list {
		c.walk(f)
	}
}

// Credentials lists, sorted, the credential names an action's templates use
// (connector headers included), so the caller resolves and records only
// those. It returns nil for an unknown action.
func (c *Connector) Credentials(action string) []string {
	a, ok := c.actions[action]
	if !ok {
		return nil
	}
	return slices.Clone(a.creds)
}

// Actions lists the connector's action names, sorted.
func (c *Connector) Actions() []string { return slices.Sorted(maps.Keys(c.actions)) }

// isToken reports whether s is an RFC 9110 token (header names, methods).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
