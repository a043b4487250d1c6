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
	"sort"
	"strings"
	"sync"
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
	// Redact scrubs secrets from captured output; nil: nothing is scrubbed.
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
	binds   []string
	seed    string
	keep    bool
	egress  []string
	opts    Options
	actions map[string]*action
}

// New builds the connector of an exec connector document.
func New(c *config.Connector, o Options) (*Connector, error) {
	if c.Type != config.TypeExec || c.Sandbox == nil {
		return nil, fmt.Errorf("connector %s: not an exec connector", c.Name)
	}
	s := c.Sandbox
	conn := &Connector{name: c.Name, binds: s.Binds, seed: s.Workdir.Seed, keep: s.Workdir.Keep, egress: s.Egress, opts: o, actions: map[string]*action{}}
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
	if err := sandbox.Available(); err != nil {
		return nil, err
	}
	// The credentials this call resolved, to scrub from what its egress
	// attempts show whatever their case (the proxy lower-cases host names,
	// which the caller's redactor would not recognise).
	var (
		credMu sync.Mutex
		creds  = map[string]string{} // value → name
	)
	if cred != nil {
		resolve := cred
		cred = func(n string) (string, error) {
			v, err := resolve(n)
			if err == nil {
				credMu.Lock()
				creds[v] = n
				credMu.Unlock()
			}
			return v, err
		}
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
	spec := sandbox.Spec{Argv: argv, Env: env, Binds: c.binds, Seed: c.seed, KeepWorkDir: c.keep, Limits: a.limits, Redact: c.opts.Redact}
	if len(c.egress) > 0 {
		spec.Egress = &egress.Options{Allow: c.egress, Resolver: c.opts.Resolver, Redact: func(s string) string {
			if c.opts.Redact != nil {
				s = string(c.opts.Redact([]byte(s)))
			}
			credMu.Lock()
			defer credMu.Unlock()
			return RedactFold(s, creds)
		}}
		if audit := c.opts.Audit; audit != nil {
			spec.Egress.Audit = func(a egress.Attempt) error { return audit(ctx, name, a) }
		}
		if c.opts.AllowAddr != nil {
			spec.Egress.AllowAddr = c.opts.AllowAddr
		}
	}
	res, err := sandbox.Run(ctx, spec)
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

// RedactFold replaces every occurrence of each value of secrets (value →
// name), compared without regard to ASCII case, with [REDACTED:name].
// Values shorter than 4 bytes are left alone, as the redactor does.
func RedactFold(s string, secrets map[string]string) string {
	if len(secrets) == 0 {
		return s
	}
	vals := make([]string, 0, len(secrets))
	for v := range secrets {
		if len(v) >= 4 {
			vals = append(vals, v)
		}
	}
	// Longest first, so that a secret containing another is replaced whole.
	sort.Slice(vals, func(i, j int) bool {
		return len(vals[i]) > len(vals[j]) || len(vals[i]) == len(vals[j]) && vals[i] < vals[j]
	})
	for _, v := range vals {
		lv := asciiLower(v)
		for {
			// asciiLower keeps byte offsets, so an index in the folded
			// string is an index in s.
			i := strings.Index(asciiLower(s), lv)
			if i < 0 {
				break
			}
			s = s[:i] + "[REDACTED:" + secrets[v] + "]" + s[i+len(v):]
		}
	}
	return s
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
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
