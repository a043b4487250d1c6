package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/policy"
)

func runExplain(e *env, args []string) int {
	fs := newFlags("explain", "explain --agent A --connector C --action X [--args JSON] [--env E] [--tenant T] [--config DIR] [--json]")
	dir := configFlag(fs)
	agent := fs.String("agent", "", "agent name (required)")
	connector := fs.String("connector", "", "connector name (required)")
	action := fs.String("action", "", "action name (required)")
	argsJSON := fs.String("args", "{}", "the call's arguments, a JSON object")
	environment := fs.String("env", "", "the call's environment, e.g. production")
	tenant := fs.String("tenant", call.DefaultTenant, "the agent's tenant")
	runID := fs.String("run-id", "", "the call's run id")
	at := fs.String("time", "", "the call's time, RFC 3339 (default: now)")
	asJSON := fs.Bool("json", false, "print one JSON object: decision, rules, reason, version")
	pos, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	var missing []string
	for name, v := range map[string]string{"--agent": *agent, "--connector": *connector, "--action": *action} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "warden explain: unexpected argument %q\n", pos[0])
		return exitBadArgs
	}
	if len(missing) > 0 {
		fmt.Fprintf(e.stderr, "warden explain: missing %s\n", strings.Join(sorted(missing), ", "))
		return exitBadArgs
	}
	callArgs, err := call.DecodeArgs([]byte(*argsJSON))
	if err != nil {
		fmt.Fprintf(e.stderr, "warden explain: --args: %v\n", err)
		return exitBadArgs
	}
	when := time.Now().UTC()
	if *at != "" {
		if when, err = time.Parse(time.RFC3339, *at); err != nil {
			fmt.Fprintf(e.stderr, "warden explain: --time must be RFC 3339, such as 2026-11-21T03:00:00Z: %v\n", err)
			return exitBadArgs
		}
	}
	cfg, err := config.Load(*dir)
	if err != nil {
		printConfigError(e, err)
		return exitBadArgs
	}
	eng := policy.New(cfg)
	if _, ok := eng.Agent(*tenant, *agent); !ok {
		fmt.Fprintf(e.stderr, "warden explain: unknown agent %q in tenant %q\n", *agent, *tenant)
		return exitBadArgs
	}
	c, ok := eng.Connector(*connector)
	if !ok {
		fmt.Fprintf(e.stderr, "warden explain: unknown connector %q\n", *connector)
		return exitBadArgs
	}
	if _, ok := c.ActionType(*action); !ok {
		fmt.Fprintf(e.stderr, "warden explain: connector %q has no action %q\n", *connector, *action)
		return exitBadArgs
	}
	v := eng.Decide(&call.Call{
		Tenant: *tenant, Agent: *agent, Connector: *connector, Action: *action,
		Args: callArgs, Environment: *environment, RunID: *runID, Time: when,
	})
	if *asJSON {
		out := struct {
			Decision   call.Decision    `json:"decision"`
			Rules      []string         `json:"rules"`
			Reason     string           `json:"reason"`
			Version    string           `json:"version"`
			ActionType call.ActionType  `json:"action_type"`
			Violations []call.Violation `json:"violations,omitempty"`
		}{v.Decision, v.Rules, v.Reason, cfg.Version, v.ActionType, v.Violations}
		enc := json.NewEncoder(e.stdout)
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(e.stderr, "warden explain: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	fmt.Fprintf(e.stdout, "decision: %s\nrules:    %s\nreason:   %s\nversion:  %s\n",
		v.Decision, strings.Join(v.Rules, ", "), v.Reason, cfg.Version)
	return exitOK
}

func sorted(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
