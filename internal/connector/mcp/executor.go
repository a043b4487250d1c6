package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-dev/warden/internal/config"
	execconn "github.com/warden-dev/warden/internal/connector/exec"
	"github.com/warden-dev/warden/internal/connector/template"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/sandbox/egress"
	"github.com/warden-dev/warden/internal/secret"
)

// Executor runs an mcp connector's actions for the dispatcher: each action
// is the upstream tool of the same name.
type Executor struct {
	pool     *Pool
	gen      uint64 // this executor's launch generation (Pool.generation)
	launch   Launch
	key      string // launch.key(), computed once
	creds    *secret.Scope
	redactor *secret.Redactor
	refs     []string // references of the credentials the launch names
}

var _ dispatch.Executor = (*Executor)(nil)

// NewExecutor returns the executor of an mcp connector. Its upstream is
// taken from pool on first use; a stdio upstream with a sandbox block runs
// in the sandbox (SandboxStart), its egress attempts told to egressAudit
// (nil: only redacted).
func NewExecutor(c *config.Connector, pool *Pool, creds *secret.Scope, redactor *secret.Redactor, egressAudit func(context.Context, string, egress.Attempt) error) (*Executor, error) {
	if c.MCP == nil {
		return nil, fmt.Errorf("connector %s: not an mcp connector", c.Name)
	}
	m := c.MCP
	l := Launch{
		Connector: c.Name, Command: m.Command, Args: m.Args, Env: m.Env, URL: m.URL, Headers: m.Headers,
		Credentials: c.Credentials, Timeout: time.Duration(m.Timeout),
	}
	if c.Sandbox != nil && m.Command != "" {
		l.Sandbox = c.Sandbox
		l.Start = SandboxStart(c.Sandbox, execconn.Options{Redact: redactor.RedactBytes, Audit: egressAudit})
	}
	e := &Executor{pool: pool, gen: pool.generation(), launch: l, key: l.key(), creds: creds, redactor: redactor}
	for _, tmpls := range []map[string]string{m.Env, m.Headers} {
		for _, s := range tmpls {
			t, err := template.Parse(s)
			if err != nil {
				return nil, fmt.Errorf("connector %s: %w", c.Name, err)
			}
			for _, name := range t.Credentials() {
				if ref, ok := creds.Reference(name); ok && !slices.Contains(e.refs, ref) {
					e.refs = append(e.refs, ref)
				}
			}
		}
	}
	slices.Sort(e.refs)
	return e, nil
}

// Upstream is the key of this executor's launch in its pool: what
// Pool.Retain keeps.
func (e *Executor) Upstream() string { return e.key }

// credential resolves through the connector's scope: the value is
// registered with the redactor before the upstream ever sees it.
func (e *Executor) credential(ctx context.Context, name string) (string, error) {
	v, err := e.creds.Resolve(ctx, name)
	if err != nil {
		return "", err
	}
	return v.Reveal(), nil
}

// Execute calls the upstream tool named action.
func (e *Executor) Execute(ctx context.Context, action string, args map[string]any) (*dispatch.Outcome, error) {
	out := &dispatch.Outcome{CredentialsUsed: e.refs}
	res, err := e.pool.Call(ctx, &e.launch, e.key, e.gen, e.credential, action, args)
	if err != nil {
		out.Failed = true
		out.Error = agentError(err)
		out.Detail = e.redactor.Redact(err.Error())
		var se *startError
		out.CredentialFailed = errors.As(err, &se) && se.Credential != ""
		return out, nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return &dispatch.Outcome{Failed: true, Error: "the upstream's result could not be encoded", CredentialsUsed: e.refs}, nil
	}
	out.Result = json.RawMessage(e.redactor.RedactJSON(b))
	if res.IsError {
		out.Failed = true
		out.Error = "the upstream tool reported an error"
	}
	return out, nil
}

// UpstreamTools lists the upstream's tools (internal/mcp uses them for
// the descriptions and schemas of actions the config does not declare).
// Descriptions are scrubbed like results.
func (e *Executor) UpstreamTools(ctx context.Context) ([]*sdk.Tool, error) {
	tools, err := e.pool.Tools(ctx, &e.launch, e.key, e.gen, e.credential)
	if err != nil {
		return nil, errors.New(agentError(err))
	}
	return scrubTools(e.redactor, tools), nil
}

// scrubTools returns the tools with secrets scrubbed from every text an
// agent would read.
func scrubTools(r *secret.Redactor, tools []*sdk.Tool) []*sdk.Tool {
	out := make([]*sdk.Tool, 0, len(tools))
	for _, t := range tools {
		b, err := json.Marshal(t)
		if err != nil {
			continue
		}
		var c sdk.Tool
		if json.Unmarshal(r.RedactJSON(b), &c) != nil {
			continue
		}
		out = append(out, &c)
	}
	return out
}

// agentError says what went wrong in the agent's terms; the details
// (addresses, commands, Go's text) go to the audit trail only.
func agentError(err error) string {
	var se *startError
	switch {
	case errors.Is(err, errClosed):
		return "warden is shutting down; the upstream is stopped"
	case errors.As(err, &se) && se.Credential != "":
		return fmt.Sprintf("credential %q could not be resolved; the upstream was not started", se.Credential)
	case errors.As(err, &se):
		return "the upstream MCP server could not be started"
	case errors.Is(err, context.DeadlineExceeded):
		return "the upstream MCP server did not answer in time"
	}
	var rpcErr *jsonrpc.Error
	if errors.As(err, &rpcErr) {
		// The upstream's own words about the call (scrubbed by the
		// dispatcher like everything it returns), capped.
		msg := rpcErr.Message
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		return "the upstream MCP server refused the call: " + msg
	}
	return "the upstream MCP server failed to answer"
}
