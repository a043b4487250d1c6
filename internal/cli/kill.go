package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/warden-dev/warden/internal/audit"
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
		what := t.tenant + "/" + t.agent
		switch {
		case t.tenant == "*":
			what = "everything"
		case t.agent == "*":
			what = "tenant " + t.tenant
		}
		rec := &audit.Record{Time: time.Now().UTC(), Kind: verb, Tenant: t.tenant, Agent: t.agent, Trigger: "cli:" + *by}
		if verb == "kill" {
			set, err := st.Kill(e.ctx, t.tenant, t.agent, *by, *reason)
			if err != nil {
				e.errorf("%v", err)
				return exitFailed
			}
			if !set {
				fmt.Fprintf(e.stdout, "%s was already killed\n", what)
				continue
			}
			rec.Reason = fmt.Sprintf("killed %s by %s", what, *by)
			if *reason != "" {
				rec.Reason += ": " + *reason
			}
		} else {
			was, err := st.Revive(e.ctx, t.tenant, t.agent)
			if err != nil {
				e.errorf("%v", err)
				return exitFailed
			}
			if !was {
				fmt.Fprintf(e.stdout, "%s was not killed\n", what)
				continue
			}
			rec.Reason = fmt.Sprintf("revived %s by %s", what, *by)
		}
		if err := st.Append(e.ctx, rec); err != nil {
			e.errorf("%s is done but could not be audited: %v", verb, err)
			return exitFailed
		}
		fmt.Fprintln(e.stdout, rec.Reason)
	}
	if verb == "kill" {
		fmt.Fprintln(e.stderr, "running servers refuse these agents' calls within a second")
	}
	return exitOK
}
