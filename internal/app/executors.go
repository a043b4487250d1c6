package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/config"
	httpconn "github.com/warden-dev/warden/internal/connector/http"
	mcpconn "github.com/warden-dev/warden/internal/connector/mcp"
	"github.com/warden-dev/warden/internal/connector/template"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/policy"
	"github.com/warden-dev/warden/internal/sandbox"
	"github.com/warden-dev/warden/internal/sandbox/egress"
	"github.com/warden-dev/warden/internal/schema"
	"github.com/warden-dev/warden/internal/secret"
	"github.com/warden-dev/warden/internal/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// snapshot builds everything that depends on one config version: the
// engine, an executor per connector warden runs, and compiled input
// schemas. Executors resolve credentials through sec, each scoped to its
// own connector's credentials. mcp connectors take their upstream sessions
// from upstreams, which outlives snapshots.
func snapshot(cfg *config.Config, sec *secret.Resolver, upstreams *mcpconn.Pool, records auditAppender) (*dispatch.Snapshot, error) {
	snap := &dispatch.Snapshot{
		Engine:    policy.New(cfg),
		Executors: map[string]dispatch.Executor{},
		Schemas:   map[string]*schema.Schema{},
	}
	for _, c := range cfg.Connectors {
		for name, a := range c.Actions {
			if a.InputSchema != nil {
				s, err := schema.Compile(a.InputSchema)
				if err != nil {
					return nil, fmt.Errorf("connector %s action %s: input_schema: %w", c.Name, name, err)
				}
				snap.Schemas[c.Name+"/"+name] = s
			}
		}
		if c.Type == config.TypeMCP && c.MCP != nil { // without command or url: decide-only
			if c.Sandbox != nil {
				// Like exec: a sandboxed server never runs unsandboxed, and a
				// machine that cannot sandbox says so at load.
				if err := sandbox.Available(); err != nil {
					return nil, fmt.Errorf("connector %s: %w", c.Name, err)
				}
			}
			var audit func(context.Context, string, egress.Attempt) error
			if records != nil {
				audit = egressAudit(records, c, cfg.Version) // exec.go
			}
			ex, err := mcpconn.NewExecutor(c, upstreams, sec.Scope(c.Name, c.Credentials, credentialsTTL(c)), sec.Redactor(), audit)
			if err != nil {
				return nil, err
			}
			snap.Executors[c.Name] = ex
			continue
		}
		if c.Type == config.TypeExec {
			ex, err := newExecExecutor(c, sec, records, cfg.Version) // exec.go
			if err != nil {
				return nil, err
			}
			snap.Executors[c.Name] = ex
			continue
		}
		if c.Type != config.TypeHTTP {
			continue // other types are decide-only until their connectors land
		}
		ex, err := newHTTPExecutor(c, sec)
		if err != nil {
			return nil, err
		}
		snap.Executors[c.Name] = ex
	}
	return snap, nil
}

// mcpUpstreams lists the pool keys of snap's mcp executors: the upstreams
// Pool.Retain keeps once snap is live.
func mcpUpstreams(snap *dispatch.Snapshot) []string {
	var keys []string
	for _, ex := range snap.Executors {
		if m, ok := ex.(*mcpconn.Executor); ok {
			keys = append(keys, m.Upstream())
		}
	}
	return keys
}

// upstreamTransport is shared by every http connector: keep-alive
// connections to upstreams survive across calls and config versions. The
// standard transport keeps only 2 idle connections per host, which under
// concurrency means a new TCP connection for most calls.
var upstreamTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return t
}()

// httpExecutor adapts the http connector to the dispatcher, resolving
// credentials at dispatch time (only its own connector's, cached for at
// most the connector's credentials_ttl). The dispatcher scrubs what comes
// back; the executor scrubs the error detail it builds itself.
type httpExecutor struct {
	conn     *httpconn.Connector
	creds    *secret.Scope
	redactor *secret.Redactor
}

func newHTTPExecutor(c *config.Connector, sec *secret.Resolver) (*httpExecutor, error) {
	hc := httpconn.Config{
		Name:       c.Name,
		BaseURL:    c.HTTP.BaseURL,
		AllowHosts: c.HTTP.AllowHosts,
		Timeout:    time.Duration(c.HTTP.Timeout),
		Headers:    c.HTTP.Headers,
		Actions:    map[string]httpconn.Action{},
	}
	for name, a := range c.Actions {
		hc.Actions[name] = httpconn.Action{
			Method: a.HTTP.Method, Path: a.HTTP.Path, Query: a.HTTP.Query,
			Headers: a.HTTP.Headers, Body: a.HTTP.Body,
		}
	}
	conn, err := httpconn.New(hc, &http.Client{Transport: upstreamTransport})
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", c.Name, err)
	}
	ttl := secret.DefaultTTL
	if c.CredentialsTTL != nil {
		ttl = time.Duration(*c.CredentialsTTL)
	}
	return &httpExecutor{conn: conn, creds: sec.Scope(c.Name, c.Credentials, ttl), redactor: sec.Redactor()}, nil
}

func (e *httpExecutor) Execute(ctx context.Context, action string, args map[string]any) (*dispatch.Outcome, error) {
	creds := &credentialUse{scope: e.creds}
	res, err := e.conn.Execute(ctx, action, args, creds.resolver(ctx))
	used, failedCred := creds.done()
	out := &dispatch.Outcome{CredentialsUsed: used, CredentialFailed: failedCred != ""}
	if err != nil {
		out.Failed = true
		out.Error = agentError(err, failedCred)
		out.Detail = e.redactor.Redact(err.Error())
		return out, nil
	}
	result := map[string]any{"status": res.Status, "body": res.Body}
	if len(res.Headers) > 0 {
		result["headers"] = res.Headers
	}
	if res.Truncated {
		result["truncated"] = true
	}
	b, err := json.Marshal(result)
	if err != nil {
		return &dispatch.Outcome{Failed: true, Error: "the upstream response could not be encoded", CredentialsUsed: used}, nil
	}
	out.Result = json.RawMessage(b) // the dispatcher redacts every result
	if res.Status >= 400 {
		out.Failed = true
		out.Error = fmt.Sprintf("upstream answered %d", res.Status)
	}
	return out, nil
}

// credentialUse resolves one call's credentials through its connector's
// scope, each in a warden.secret span, and remembers which references the
// call used (for its outcome; never values) and which name failed.
type credentialUse struct {
	scope  *secret.Scope
	mu     sync.Mutex
	used   []string
	failed string
}

// resolver is the connector's credential lookup for one call. A failure
// names the reference, never a value, and fails the call: nothing is sent
// or run without its credential.
func (c *credentialUse) resolver(ctx context.Context) func(name string) (string, error) {
	return func(name string) (string, error) {
		if ref, ok := c.scope.Reference(name); ok {
			c.mu.Lock()
			if !slices.Contains(c.used, ref) {
				c.used = append(c.used, ref)
			}
			c.mu.Unlock()
		}
		_, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(telemetry.TracerName).Start(ctx, "warden.secret")
		span.SetAttributes(attribute.String("warden.credential", name))
		v, err := c.scope.Resolve(ctx, name)
		if err != nil {
			span.SetStatus(codes.Error, "credential could not be resolved")
		}
		span.End()
		if err != nil {
			c.mu.Lock()
			c.failed = name
			c.mu.Unlock()
			return "", err
		}
		return v.Reveal(), nil
	}
}

// done returns the references used and the credential that failed, if any.
func (c *credentialUse) done() (used []string, failed string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, c.failed
}

// agentError says what went wrong in the agent's terms. The full error,
// with upstream addresses, secret references and Go's own text, goes to
// the audit trail and the logs only.
func agentError(err error, failedCred string) string {
	var argErr *template.ArgError
	var connErr *httpconn.Error
	switch {
	case failedCred != "":
		return fmt.Sprintf("credential %q could not be resolved; the request was not sent", failedCred)
	case errors.As(err, &argErr):
		return argErr.Error() // about the agent's own arguments
	case errors.Is(err, httpconn.ErrUnsafeValue):
		return "an argument value is not allowed in the request (such as a '..' path segment or a control character)"
	case errors.Is(err, httpconn.ErrHostNotAllowed):
		return "the upstream redirected to a host the connector may not reach"
	case errors.Is(err, httpconn.ErrTooManyRedirects):
		return "the upstream redirected too many times"
	case errors.As(err, &connErr) && connErr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "the upstream did not answer in time"
	}
	return "the upstream could not be reached"
}

// credentialsTTL is how long a connector's resolved credentials are reused.
func credentialsTTL(c *config.Connector) time.Duration {
	if c.CredentialsTTL != nil {
		return time.Duration(*c.CredentialsTTL)
	}
	return secret.DefaultTTL
}
