package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/config"
	httpconn "github.com/warden-dev/warden/internal/connector/http"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/policy"
	"github.com/warden-dev/warden/internal/schema"
	"github.com/warden-dev/warden/internal/secret"
)

// snapshot builds everything that depends on one config version: the
// engine, an executor per connector warden runs, and compiled input
// schemas.
func snapshot(cfg *config.Config) (*dispatch.Snapshot, error) {
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
		if c.Type != config.TypeHTTP {
			continue // other types are decide-only until their connectors land
		}
		ex, err := newHTTPExecutor(c)
		if err != nil {
			return nil, err
		}
		snap.Executors[c.Name] = ex
	}
	return snap, nil
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
// credentials at dispatch time and scrubbing their values from what comes
// back.
type httpExecutor struct {
	conn  *httpconn.Connector
	creds map[string]string // credential name → reference
}

func newHTTPExecutor(c *config.Connector) (*httpExecutor, error) {
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
	return &httpExecutor{conn: conn, creds: c.Credentials}, nil
}

func (e *httpExecutor) Execute(ctx context.Context, action string, args map[string]any) (*dispatch.Outcome, error) {
	var (
		mu     sync.Mutex
		used   []string
		values = map[string]string{}
	)
	resolve := func(name string) (string, error) {
		ref, ok := e.creds[name]
		if !ok {
			return "", fmt.Errorf("no credential %q", name)
		}
		r, err := secret.ParseRef(ref)
		if err != nil {
			return "", err
		}
		v, err := secret.Resolve(ctx, r)
		mu.Lock()
		used = append(used, ref)
		if err == nil {
			values[name] = v
		}
		mu.Unlock()
		return v, err
	}
	res, err := e.conn.Execute(ctx, action, args, resolve)
	out := &dispatch.Outcome{CredentialsUsed: used}
	if err != nil {
		out.Failed = true
		out.Error = secret.Scrub(err.Error(), values)
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
	out.Result = json.RawMessage(secret.Scrub(string(b), values))
	if res.Status >= 400 {
		out.Failed = true
		out.Error = fmt.Sprintf("upstream answered %d", res.Status)
	}
	return out, nil
}
