package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/client"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/hook"
)

// maxReportedResult bounds the tool_response a PostToolUse hook sends as
// the call's result; a larger one is reported without it (its outcome and
// the audit record still land).
const maxReportedResult = 256 << 10

// warden hook claude-code [--server URL] [--token-file F] [--on-error deny|ask]
//
// Claude Code runs it as a command hook. PreToolUse: the tool call is asked
// of warden's POST /v1/decide and the answer printed in Claude Code's hook
// format. PostToolUse: the outcome is reported to POST /v1/calls/{id}/outcome.
// It always exits 0 with its answer on stdout once its flags parse: a
// failure is a deny (or ask, with --on-error ask), never an allow.
func runHook(e *env, args []string) int {
	fs := newFlags("hook", "hook claude-code [--server URL] [--token-file FILE] [--on-error deny|ask] [--state-dir DIR] [--timeout D]")
	server := fs.String("server", envOr("WARDEN_URL", "http://"+app.DefaultAddr), "warden's URL (env WARDEN_URL)")
	tokenFile := fs.String("token-file", "", "file holding the agent's token (default: env WARDEN_TOKEN)")
	onError := fs.String("on-error", envOr("WARDEN_HOOK_ON_ERROR", hook.Deny), "answer when warden cannot decide: deny or ask, never allow (env WARDEN_HOOK_ON_ERROR)")
	stateDir := fs.String("state-dir", "", "where a PreToolUse leaves the call id for its PostToolUse (default: $XDG_RUNTIME_DIR/warden-hook, else a private dir in the temp dir)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for warden")
	pos, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(pos) != 1 || pos[0] != "claude-code" {
		e.errorf("usage: warden hook claude-code [flags]; claude-code is the one runtime with hooks so far")
		return exitBadArgs
	}
	if *onError != hook.Deny && *onError != hook.Ask {
		e.errorf("--on-error must be deny or ask (a hook never allows what warden did not decide), got %q", *onError)
		return exitBadArgs
	}
	h := &hookRun{e: e, onError: *onError, stateDir: *stateDir}
	ctx, cancel := context.WithTimeout(e.ctx, *timeout)
	defer cancel()

	data, err := io.ReadAll(io.LimitReader(e.stdin, hook.MaxPayload+1))
	if err != nil {
		return h.fail("cannot read the hook payload: " + err.Error())
	}
	p, err := hook.Parse(data)
	if err != nil {
		return h.fail(err.Error())
	}
	tok, err := agentToken(*tokenFile)
	if err != nil {
		return h.failEvent(p, err.Error())
	}
	c := client.New(*server, tok)
	if p.Reports() {
		return h.post(ctx, c, p)
	}
	return h.pre(ctx, c, p)
}

type hookRun struct {
	e        *env
	onError  string
	stateDir string
}

// pre asks warden to decide the tool call and prints Claude Code's answer.
func (h *hookRun) pre(ctx context.Context, c *client.Client, p *hook.Payload) int {
	cl := p.Call()
	res, err := c.Decide(ctx, client.CallRequest{Connector: cl.Connector, Action: cl.Action, Args: cl.Args,
		RunID: cl.RunID, FrontEnd: audit.FrontEndHook})
	if err != nil {
		return h.fail("warden could not decide: " + describeClientError(err))
	}
	verdict := hook.Verdict(res.Decision)
	reason := res.Reason
	if reason == "" {
		reason = strings.ToLower(res.Decision)
		if len(res.Rules) > 0 {
			reason += " by " + strings.Join(res.Rules, ", ")
		}
	}
	reason = "warden: " + reason + " (" + res.ID + ")"
	if verdict != hook.Deny && res.Status == dispatch.StatusDecided {
		if err := h.remember(p, res.ID); err != nil {
			// The decision stands; only the outcome report is lost.
			fmt.Fprintf(h.e.stderr, "warden hook: cannot keep the call id for PostToolUse: %v\n", err)
		}
	}
	h.e.stdout.Write(hook.Answer(verdict, reason))
	return exitOK
}

// post reports what the tool did to the call its PreToolUse decided. The
// tool has run: nothing here can stop it, so failures are only reported on
// stderr.
func (h *hookRun) post(ctx context.Context, c *client.Client, p *hook.Payload) int {
	id, err := h.recall(p)
	if err != nil {
		fmt.Fprintf(h.e.stderr, "warden hook: no PreToolUse decision recorded for this tool call (%v); outcome not reported\n", err)
		return exitOK
	}
	o := client.Outcome{Status: "succeeded"}
	if failed, why := p.Failed(); failed {
		o.Status, o.Error = "failed", why
	}
	if len(p.ToolResponse) > 0 && len(p.ToolResponse) <= maxReportedResult && json.Valid(p.ToolResponse) {
		o.Result = p.ToolResponse
	}
	if err := c.ReportOutcome(ctx, id, o); err != nil {
		fmt.Fprintf(h.e.stderr, "warden hook: cannot report the outcome of %s: %s\n", id, describeClientError(err))
	}
	return exitOK
}

// fail answers a PreToolUse that warden could not decide: deny (or ask),
// never allow. The reason goes to Claude Code, which shows it.
func (h *hookRun) fail(reason string) int {
	fmt.Fprintln(h.e.stderr, "warden hook: "+reason)
	h.e.stdout.Write(hook.Answer(h.onError, "warden: "+reason))
	return exitOK
}

// failEvent is fail for a payload that parsed: a PostToolUse only reports.
func (h *hookRun) failEvent(p *hook.Payload, reason string) int {
	if p.Reports() {
		fmt.Fprintln(h.e.stderr, "warden hook: "+reason+"; outcome not reported")
		return exitOK
	}
	return h.fail(reason)
}

// describeClientError is what an API error says, without Go's wrapping.
func describeClientError(err error) string {
	var ae *client.Error
	if errors.As(err, &ae) {
		return fmt.Sprintf("%s (HTTP %d)", ae.Message, ae.Status)
	}
	return err.Error()
}

// remember leaves the call id where the PostToolUse of the same tool call
// finds it: one small file per tool_use_id in a private directory.
func (h *hookRun) remember(p *hook.Payload, id string) error {
	path, err := h.statePath(p)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(id), 0o600)
}

// recall returns and forgets the call id remember left.
func (h *hookRun) recall(p *hook.Payload) (string, error) {
	path, err := h.statePath(p)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", errors.New("no call id for this tool_use_id")
	}
	os.Remove(path)
	return strings.TrimSpace(string(b)), nil
}

func (h *hookRun) statePath(p *hook.Payload) (string, error) {
	if p.ToolUseID == "" {
		return "", errors.New("the payload has no tool_use_id")
	}
	dir := h.stateDir
	if dir == "" {
		if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
			dir = filepath.Join(rt, "warden-hook")
		} else {
			dir = filepath.Join(os.TempDir(), "warden-hook-"+strconv.Itoa(os.Getuid()))
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("state directory %s must be a directory only its owner can read (mode 0700)", dir)
	}
	sum := sha256.Sum256([]byte(p.SessionID + "\x00" + p.ToolUseID))
	return filepath.Join(dir, hex.EncodeToString(sum[:16])), nil
}

// agentToken is the agent's bearer token: the first line of tokenFile, or
// $WARDEN_TOKEN.
func agentToken(tokenFile string) (string, error) {
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return "", fmt.Errorf("cannot read --token-file: %v", errors.Unwrap(err))
		}
		tok, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		if tok = strings.TrimSpace(tok); tok == "" {
			return "", errors.New("--token-file is empty")
		}
		return tok, nil
	}
	if tok := strings.TrimSpace(os.Getenv("WARDEN_TOKEN")); tok != "" {
		return tok, nil
	}
	return "", errors.New("no agent token: set WARDEN_TOKEN or pass --token-file")
}
