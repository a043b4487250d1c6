// Package exec is the exec connector: an action is a command, run in the
// sandbox (internal/sandbox) with exactly the filesystem, network,
// processes and time its config grants.
//
// A command is an argv whose elements are templates ({args.x}); each is
// rendered on its own, so an argument value is always exactly one argv
// element and never reaches a shell — unless the action says shell: true,
// and then the command is one script run by /bin/sh -c in which every
// substituted value is one single-quoted shell word. env values are
// templates too, and the only place {credentials.NAME} may appear: they are
// injected inside the sandbox, and whatever the command prints is scrubbed
// of them by the caller's redactor before it is cut to the output cap.
//
// The package knows nothing of secret providers, policy or audit storage:
// credentials come through the resolver Execute is given, redaction through
// Options.Redact, and egress attempts are reported in the Result.
package exec

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/connector/template"
	"github.com/warden-dev/warden/internal/sandbox"
	"github.com/warden-dev/warden/internal/sandbox/egress"
)

// ErrUnsafeValue reports an argument value that cannot be passed to a
// command (a NUL byte).
var ErrUnsafeValue = errors.New("argument value contains a NUL byte")

// Options configure a Connector beyond its config.
type Options struct {
	// Redact scrubs secrets from captured output and from what egress
	// attempts show (host and reason); nil: nothing is scrubbed. The proxy
	// lower-cases host names, so it should know secrets in lower case too
	// (secret.Redactor does).
	Redact func([]byte) []byte
	// Resolver and AllowAddr override the egress proxy's DNS and address
	// policy (tests only; nil: the strict production defaults).
	Resolver  egress.Resolver
	AllowAddr func(netip.Addr) bool
	// Audit is told of every egress attempt of a call (ctx is the call's,
	// action its action) before an allowed one is dialled; an error refuses
	// the connection. Nil: the attempts are only reported in the Result.
	Audit func(ctx context.Context, action string, a egress.Attempt) error
}

type action struct {
	argv   []*template.Template
	shell  bool
	env    map[string]*template.Template
	limits sandbox.Limits
}

// Connector runs one exec connector's actions. It is immutable and safe
// for concurrent use.
type Connector struct {
	name    string
	sandbox *config.Sandbox
	opts    Options
	actions map[string]*action
}

// New builds the connector of an exec connector document.
func New(c *config.Connector, o Options) (*Connector, error) {
	if c.Type != config.TypeExec || c.Sandbox == nil {
		return nil, fmt.Errorf("connector %s: not an exec connector", c.Name)
	}
	s := c.Sandbox
	conn := &Connector{name: c.Name, sandbox: s, opts: o, actions: map[string]*action{}}
	for name, a := range c.Actions {
		if a.Exec == nil {
			return nil, fmt.Errorf("connector %s action %s: no command", c.Name, name)
		}
		act := &action{shell: a.Exec.Shell, env: map[string]*template.Template{}, limits: Limits(a.Exec.Limits.Merge(s.Limits))}
		for i, el := range a.Exec.Command {
			t, err := template.Parse(el)
			if err != nil {
				return nil, fmt.Errorf("connector %s action %s command[%d]: %w", c.Name, name, i, err)
			}
			act.argv = append(act.argv, t)
		}
		for k, v := range a.Exec.Env {
			t, err := template.Parse(v)
			if err != nil {
				return nil, fmt.Errorf("connector %s action %s env.%s: %w", c.Name, name, k, err)
			}
			act.env[k] = t
		}
		conn.actions[name] = act
	}
	return conn, nil
}

// Limits turns config limits into sandbox limits (zero: the default).
func Limits(l config.SandboxLimits) sandbox.Limits {
	return sandbox.Limits{
		CPU: time.Duration(l.CPU), Memory: int64(l.Memory), AddressSpace: int64(l.AddressSpace),
		Processes: l.Processes, FileSize: int64(l.FileSize), OpenFiles: l.OpenFiles,
		Timeout: time.Duration(l.Timeout), Output: int64(l.Output), Tmp: int64(l.Tmp),
	}
}

// SandboxSpec is the sandbox.Spec of a connector's sandbox block for one
// command: its binds, work directory and egress allowlist, with o's
// redactor (for output and egress attempts) and proxy overrides. audit, if
// set, is told of each egress attempt. Exec actions and sandboxed MCP
// servers both get theirs here.
func SandboxSpec(sb *config.Sandbox, argv []string, env map[string]string, limits sandbox.Limits, o Options, audit func(egress.Attempt) error) sandbox.Spec {
	spec := sandbox.Spec{Argv: argv, Env: env, Binds: sb.Binds, Seed: sb.Workdir.Seed, KeepWorkDir: sb.Workdir.Keep, Limits: limits, Redact: o.Redact}
	if len(sb.Egress) > 0 {
		spec.Egress = &egress.Options{Allow: sb.Egress, Resolver: o.Resolver, AllowAddr: o.AllowAddr, Audit: audit}
		if redact := o.Redact; redact != nil {
			spec.Egress.Redact = func(s string) string { return string(redact([]byte(s))) }
		}
	}
	return spec
}

// Attempt is one egress attempt as the agent sees it.
type Attempt struct {
	Host    string `json:"host"`
	Port    int    `json:"port"`
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

// Result is what an action's command did; it is the call's result.
type Result struct {
	ExitCode   int       `json:"exit_code"`
	Stdout     string    `json:"stdout"`
	Stderr     string    `json:"stderr"`
	DurationMS int64     `json:"duration_ms"`
	Killed     bool      `json:"killed"`
	KillReason string    `json:"kill_reason,omitempty"`
	Truncated  bool      `json:"truncated"`
	Egress     []Attempt `json:"egress,omitempty"`
	// Landlock is the Landlock ABI the sandbox applied (0: none).
	Landlock int `json:"-"`
	// WorkDir is a kept work directory's host path, for operators only.
	WorkDir string `json:"-"`
}

// Execute renders the action's command for args, runs it in the sandbox
// and returns what it did. cred resolves {credentials.NAME}. Errors mean
// the command did not run: *template.ArgError (the agent's arguments),
// *template.CredentialError, ErrUnsafeValue, sandbox.ErrNoBubblewrap,
// *sandbox.SetupError.
func (c *Connector) Execute(ctx context.Context, name string, args map[string]any, cred func(string) (string, error)) (*Result, error) {
	a, ok := c.actions[name]
	if !ok {
		return nil, fmt.Errorf("connector %s has no action %q", c.name, name)
	}
	data := template.Data{Args: args, Credential: cred}
	var esc template.Escaper
	if a.shell {
		esc = ShellQuote
	}
	argv := make([]string, 0, len(a.argv)+2)
	if a.shell {
		argv = append(argv, "/bin/sh", "-c")
	}
	for _, t := range a.argv {
		s, err := template.Render(t, data, esc)
		if err != nil {
			return nil, err
		}
		if strings.IndexByte(s, 0) >= 0 {
			return nil, ErrUnsafeValue
		}
		argv = append(argv, s)
	}
	env := map[string]string{}
	for k, t := range a.env {
		s, err := template.Render(t, data, nil)
		if err != nil {
			return nil, err
		}
		if strings.IndexByte(s, 0) >= 0 {
			return nil, ErrUnsafeValue
		}
		env[k] = s
	}
	var audit func(egress.Attempt) error
	if au := c.opts.Audit; au != nil {
		audit = func(a egress.Attempt) error { return au(ctx, name, a) }
	}
	res, err := sandbox.Run(ctx, SandboxSpec(c.sandbox, argv, env, a.limits, c.opts, audit))
	if err != nil {
		return nil, err
	}
	out := &Result{
		ExitCode: res.ExitCode, Stdout: string(res.Stdout), Stderr: string(res.Stderr),
		DurationMS: res.Duration.Milliseconds(), Killed: res.Killed, KillReason: res.KillReason,
		Truncated: res.Truncated, Landlock: res.Landlock, WorkDir: res.WorkDir,
	}
	for _, e := range res.Egress {
		out.Egress = append(out.Egress, Attempt{Host: e.Host, Port: e.Port, Allowed: e.Allowed, Reason: e.Reason})
	}
	return out, nil
}

// ShellQuote makes s one single-quoted shell word.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Failure says, in the agent's terms, why a command that ran did not
// succeed; "" when it did.
func (r *Result) Failure() string {
	switch {
	case r.Killed:
		switch r.KillReason {
		case sandbox.KilledTimeout:
			return "command killed: it ran past its time limit"
		case sandbox.KilledCPU:
			return "command killed: it used up its CPU time limit"
		case sandbox.KilledMemory:
			return "command killed: it used more memory than its limit"
		case sandbox.KilledFileSize:
			return "command killed: it wrote a file larger than its limit"
		case sandbox.KilledCancelled:
			return "command stopped: the call was cancelled"
		}
		return "command killed (" + r.KillReason + ")"
	case r.ExitCode != 0:
		return fmt.Sprintf("command exited with status %d", r.ExitCode)
	}
	return ""
}
