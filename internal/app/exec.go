package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	execconn "github.com/warden-dev/warden/internal/connector/exec"
	"github.com/warden-dev/warden/internal/connector/template"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/sandbox"
	"github.com/warden-dev/warden/internal/sandbox/egress"
	"github.com/warden-dev/warden/internal/secret"
)

// execExecutor adapts the exec connector to the dispatcher: credentials
// resolved at dispatch time through the connector's own scope, injected
// into the sandbox's environment, and scrubbed — with every other secret —
// from what the command printed, by the process's one redactor.
type execExecutor struct {
	conn     *execconn.Connector
	creds    *secret.Scope
	redactor *secret.Redactor
}

// newExecExecutor builds an exec connector's executor. It fails when this
// machine cannot sandbox commands (no bubblewrap): warden never runs them
// unsandboxed, and says so when the config is loaded rather than on the
// first call.
func newExecExecutor(c *config.Connector, sec *secret.Resolver, records auditAppender, version string) (*execExecutor, error) {
	if err := sandbox.Available(); err != nil {
		return nil, fmt.Errorf("connector %s: %w", c.Name, err)
	}
	r := sec.Redactor()
	o := execconn.Options{Redact: r.RedactBytes}
	if records != nil {
		o.Audit = egressAudit(records, c, version)
	}
	conn, err := execconn.New(c, o)
	if err != nil {
		return nil, err
	}
	return &execExecutor{conn: conn, creds: sec.Scope(c.Name, c.Credentials, credentialsTTL(c)), redactor: r}, nil
}

func (e *execExecutor) Execute(ctx context.Context, action string, args map[string]any) (*dispatch.Outcome, error) {
	creds := &credentialUse{scope: e.creds}
	res, err := e.conn.Execute(ctx, action, args, creds.resolver(ctx))
	used, failedCred := creds.done()
	out := &dispatch.Outcome{CredentialsUsed: used, CredentialFailed: failedCred != ""}
	if err != nil {
		out.Failed = true
		out.Error = execAgentError(err, failedCred)
		out.Detail = e.redactor.Redact(err.Error())
		return out, nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return &dispatch.Outcome{Failed: true, Error: "the command's result could not be encoded", CredentialsUsed: used}, nil
	}
	// Captured output was scrubbed in the sandbox, before it was cut to
	// the output cap; the dispatcher redacts the whole result again.
	out.Result = json.RawMessage(b)
	if f := res.Failure(); f != "" {
		out.Failed, out.Error = true, f
		out.Detail = fmt.Sprintf("exit %d, killed %v (%s), landlock ABI %d", res.ExitCode, res.Killed, res.KillReason, res.Landlock)
	}
	if res.WorkDir != "" {
		if out.Detail != "" {
			out.Detail += "; "
		}
		out.Detail += "work directory kept at " + res.WorkDir
	}
	return out, nil
}

// auditAppender appends a record to the audit trail (the store).
type auditAppender interface {
	Append(ctx context.Context, r *audit.Record) error
}

// egressAudit writes one `egress` audit record per connection attempt of
// a sandboxed command: the connector, action and config version, the
// target in reason and args, outcome succeeded (allowed) or refused. An
// allowed attempt whose record cannot be written is refused by the proxy.
// The target is the command's to choose, so it may carry a secret: the
// proxy has already redacted host and reason with the process's redactor
// (the connector's Options.Redact) before they reach this function.
func egressAudit(records auditAppender, c *config.Connector, version string) func(context.Context, string, egress.Attempt) error {
	return func(ctx context.Context, action string, a egress.Attempt) error {
		outcome, verb := audit.OutcomeRefused, "refused"
		if a.Allowed {
			outcome, verb = audit.OutcomeSucceeded, "allowed"
		}
		args, err := json.Marshal(map[string]any{"method": a.Method, "host": a.Host, "port": a.Port, "allowed": a.Allowed})
		if err != nil {
			return err
		}
		var at call.ActionType
		if act, ok := c.Actions[action]; ok {
			at = act.Type
		}
		rec := &audit.Record{
			ID: call.NewID("rec", a.Time), Time: a.Time, Kind: KindEgress,
			Connector: c.Name, Action: action, ActionType: string(at), Args: args,
			ConfigVersion: version, Outcome: outcome,
			Reason: fmt.Sprintf("egress %s %s:%d %s: %s", a.Method, a.Host, a.Port, verb, a.Reason),
		}
		if ci, ok := dispatch.CallFrom(ctx); ok {
			rec.CallID, rec.Tenant, rec.Agent, rec.RunID, rec.FrontEnd = ci.ID, ci.Tenant, ci.Agent, ci.RunID, ci.FrontEnd
		}
		// The call's own context may already be ending (its timeout); the
		// attempt is recorded regardless.
		return records.Append(context.WithoutCancel(ctx), rec)
	}
}

// KindEgress is the audit record kind of a sandboxed command's connection
// attempt through the egress proxy.
const KindEgress = "egress"

// execAgentError says why a command did not run, in the agent's terms; the
// full error (host paths, bubblewrap's words) goes to the audit trail and
// the logs only.
func execAgentError(err error, failedCred string) string {
	var argErr *template.ArgError
	var setup *sandbox.SetupError
	switch {
	case failedCred != "":
		return fmt.Sprintf("credential %q could not be resolved; the command was not run", failedCred)
	case errors.As(err, &argErr):
		return argErr.Error()
	case errors.Is(err, execconn.ErrUnsafeValue):
		return "an argument value cannot be passed to the command (it contains a NUL byte)"
	case errors.Is(err, sandbox.ErrNoBubblewrap):
		return "the command was not run: this server cannot sandbox commands (bubblewrap is missing)"
	case errors.As(err, &setup):
		return "the command was not run: its sandbox could not be set up"
	}
	return "the command could not be run"
}
