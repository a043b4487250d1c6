package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/store"
)

// warden agents token create AGENT [--tenant T] | revoke AGENT [--tenant T] [--id ID]
func runAgents(e *env, args []string) int {
	if len(args) < 2 || args[0] != "token" || (args[1] != "create" && args[1] != "revoke") {
		e.errorf("usage: warden agents token create|revoke AGENT [--tenant T] [--db PATH]")
		return exitBadArgs
	}
	verb := args[1]
	fs := newFlags("agents token "+verb, "agents token "+verb+" AGENT [--tenant T] [--db PATH]")
	db := dbFlag(fs)
	tenant := fs.String("tenant", call.DefaultTenant, "the agent's tenant")
	name := fs.String("name", "", "a label for the token (create)")
	pos, ok := parse(fs, args[2:], e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(pos) != 1 {
		e.errorf("name exactly one agent")
		return exitBadArgs
	}
	st, ok := openStore(e, *db)
	if !ok {
		return exitFailed
	}
	defer st.Close()
	switch verb {
	case "create":
		tok, info, err := st.CreateToken(e.ctx, call.Principal{Role: call.RoleAgent, Tenant: *tenant, Agent: pos[0], Name: *name})
		if err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		fmt.Fprintln(e.stdout, tok)
		fmt.Fprintf(e.stderr, "token %s for agent %s/%s; shown once, stored only as a hash\n", info.ID, *tenant, pos[0])
	case "revoke":
		n, err := st.RevokeAgentTokens(e.ctx, *tenant, pos[0])
		if err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		fmt.Fprintf(e.stdout, "revoked %d token(s) of agent %s/%s\n", n, *tenant, pos[0])
	}
	return exitOK
}

// warden tokens create --role R [--tenant T] [--name N] | list [--json] | revoke ID
func runTokens(e *env, args []string) int {
	if len(args) < 1 {
		e.errorf("usage: warden tokens create|list|revoke")
		return exitBadArgs
	}
	verb := args[0]
	fs := newFlags("tokens "+verb, "tokens create --role admin|approver|auditor [--tenant T] [--name N] [--agents GLOBS] [--connectors GLOBS] | list [--json] | revoke ID")
	db := dbFlag(fs)
	role := fs.String("role", "", "admin, approver or auditor (create)")
	tenant := fs.String("tenant", "", "limit the token to one tenant (create; default: every tenant)")
	name := fs.String("name", "", "who holds the token, e.g. alice (create)")
	agents := fs.String("agents", "", "approver tokens: only these agents, comma-separated globs (create; default any)")
	connectors := fs.String("connectors", "", "approver tokens: only these connectors, comma-separated globs (create; default any)")
	asJSON := fs.Bool("json", false, "print JSON (list)")
	pos, ok := parse(fs, args[1:], e.stderr)
	if !ok {
		return exitBadArgs
	}
	switch verb {
	case "create", "list", "revoke":
	default:
		e.errorf("unknown tokens command %q; expected create, list or revoke", verb)
		return exitBadArgs
	}
	if verb == "create" {
		r := call.Role(*role)
		if !r.Valid() || r == call.RoleAgent {
			e.errorf("--role must be admin, approver or auditor (agent tokens: warden agents token create)")
			return exitBadArgs
		}
		if r == call.RoleApprover && *name == "" {
			e.errorf("an approver token needs --name: it is the identity rules' approvers lists, Slack's user map and the audit trail name")
			return exitBadArgs
		}
		if (*agents != "" || *connectors != "") && r != call.RoleApprover {
			e.errorf("--agents and --connectors scope approver tokens only")
			return exitBadArgs
		}
	}
	if verb == "revoke" && len(pos) != 1 {
		e.errorf("name exactly one token id")
		return exitBadArgs
	}
	st, ok := openStore(e, *db)
	if !ok {
		return exitFailed
	}
	defer st.Close()
	switch verb {
	case "create":
		p := call.Principal{Role: call.Role(*role), Tenant: *tenant, Name: *name}
		tok, info, err := "", store.TokenInfo{}, error(nil)
		if p.Role == call.RoleApprover {
			tok, info, err = createApproverToken(e, st, p, *agents, *connectors)
		} else {
			tok, info, err = st.CreateToken(e.ctx, p)
		}
		if err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		fmt.Fprintln(e.stdout, tok)
		fmt.Fprintf(e.stderr, "token %s (%s); shown once, stored only as a hash\n", info.ID, *role)
	case "list":
		list, err := st.Tokens(e.ctx)
		if err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			for _, t := range list {
				_ = enc.Encode(t)
			}
			return exitOK
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tROLE\tTENANT\tAGENT\tNAME\tCREATED\tREVOKED")
		for _, t := range list {
			revoked := "-"
			if t.RevokedAt != nil {
				revoked = t.RevokedAt.Format("2006-01-02 15:04")
			}
			tn := t.Tenant
			if tn == "" {
				tn = "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Role, tn, dash(t.Agent), dash(t.Name), t.CreatedAt.Format("2006-01-02 15:04"), revoked)
		}
		tw.Flush()
	case "revoke":
		if err := st.RevokeToken(e.ctx, pos[0]); err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		fmt.Fprintf(e.stdout, "revoked %s\n", pos[0])
	}
	return exitOK
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
