package cli

import (
	"fmt"
	"os"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/call"
)

// warden kill AGENT... [--tenant T] | kill --tenant T | kill --all ; revive the same.
func runKill(e *env, args []string) int   { return killOrRevive(e, "kill", args) }
func runRevive(e *env, args []string) int { return killOrRevive(e, "revive", args) }

func killOrRevive(e *env, verb string, args []string) int {
	fs := newFlags(verb, verb+" AGENT... [--tenant T] | "+verb+" --tenant T | "+verb+" --all  [--reason R] [--by NAME] [--db PATH]")
	db := dbFlag(fs)
	tenant := fs.String("tenant", "", "the agents' tenant (default: default); alone, the whole tenant")
	all := fs.Bool("all", false, "every agent of every tenant")
	reason := fs.String("reason", "", "why (kill; shown in every refusal)")
	by := fs.String("by", os.Getenv("USER"), "who is doing this, for the audit trail")
	agents, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	type target struct{ tenant, agent string }
	var targets []target
	switch {
	case *all && (len(agents) > 0 || *tenant != ""):
		e.errorf("--all stands alone")
		return exitBadArgs
	case *all:
		targets = append(targets, target{"*", "*"})
	case len(agents) == 0 && *tenant != "":
		targets = append(targets, target{*tenant, "*"})
	case len(agents) == 0:
		e.errorf("name agents, or --tenant T, or --all")
		return exitBadArgs
	default:
		t := *tenant
		if t == "" {
			t = call.DefaultTenant
		}
		for _, a := range agents {
			targets = append(targets, target{t, a})
		}
	}
	if *by == "" {
		*by = "cli"
	}
	st, ok := openStore(e, *db)
	if !ok {
		return exitFailed
	}
	defer st.Close()
	for _, t := range targets {
		// The console's agents page does the same (app.SwitchKill).
		_, msg, err := app.SwitchKill(e.ctx, st, app.KillChange{Revive: verb == "revive", Tenant: t.tenant, Agent: t.agent,
			By: *by, Reason: *reason, Channel: "cli"})
		if err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		fmt.Fprintln(e.stdout, msg)
	}
	if verb == "kill" {
		fmt.Fprintln(e.stderr, "running servers refuse these agents' calls within a second")
	}
	return exitOK
}
