package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/store"
)

// warden approvals list [--status S] [--json] | show ID [--json] |
// approve ID [--comment C] [--wait D] | deny ID [--comment C]
//
// The CLI acts as the human whose approver token it is given (--token, or
// $WARDEN_APPROVER_TOKEN): the same tenant, scope, rule-approver and
// no-self-approval checks as the API apply, and the vote is recorded with
// that identity and channel "cli". It writes the vote to the store; the
// running server executes an approved call (within a quarter second).
func runApprovals(e *env, args []string) int {
	const usageLine = "approvals list [--status pending|approved|denied|expired|all] [--json] | show ID [--json] | approve ID [--comment C] [--wait D] | deny ID [--comment C]"
	if len(args) < 1 {
		e.errorf("usage: warden %s", usageLine)
		return exitBadArgs
	}
	verb := args[0]
	fs := newFlags("approvals "+verb, usageLine)
	db := dbFlag(fs)
	token := fs.String("token", "", "your approver token (default $WARDEN_APPROVER_TOKEN)")
	status := fs.String("status", "pending", "which approvals (list): pending, approved, denied, expired or all")
	limit := fs.Int("limit", 100, "at most this many (list)")
	asJSON := fs.Bool("json", false, "print JSON (list, show)")
	comment := fs.String("comment", "", "a comment recorded with the decision (approve, deny)")
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for the server to run an approved call (approve; 0: don't)")
	pos, ok := parse(fs, args[1:], e.stderr)
	if !ok {
		return exitBadArgs
	}
	switch verb {
	case "list":
		if len(pos) != 0 {
			e.errorf("approvals list takes no arguments")
			return exitBadArgs
		}
	case "show", "approve", "deny":
		if len(pos) != 1 {
			e.errorf("name exactly one approval id")
			return exitBadArgs
		}
	default:
		e.errorf("unknown approvals command %q; expected list, show, approve or deny", verb)
		return exitBadArgs
	}
	tok := *token
	if tok == "" {
		tok = os.Getenv("WARDEN_APPROVER_TOKEN")
	}
	if tok == "" {
		e.errorf("who are you? pass your approver token with --token or $WARDEN_APPROVER_TOKEN (warden tokens create --role approver --name NAME)")
		return exitBadArgs
	}
	st, ok := openStore(e, *db)
	if !ok {
		return exitFailed
	}
	defer st.Close()
	p, err := st.Authenticate(e.ctx, strings.TrimSpace(tok))
	if errors.Is(err, store.ErrNotFound) {
		e.errorf("unknown or revoked token")
		return exitFailed
	}
	if err != nil {
		e.errorf("%v", err)
		return exitFailed
	}
	d := dispatch.New(dispatch.Options{Store: st, Approvals: st}, nil)

	switch verb {
	case "list":
		list, err := d.Approvals(e.ctx, p, *status, *limit)
		if err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			for _, v := range list {
				_ = enc.Encode(v)
			}
			return exitOK
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tAGENT\tACTION\tARGS\tAGE\tEXPIRES")
		now := time.Now()
		for _, v := range list {
			exp := "-"
			if v.ExpiresAt != nil && v.Status == "pending" {
				exp = "in " + v.ExpiresAt.Sub(now).Round(time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s.%s\t%s\t%s\t%s\n", v.ID, v.Status, v.Tenant, v.Agent, v.Connector, v.Action,
				clip(string(v.Args), 60), now.Sub(v.RequestedAt).Round(time.Second), exp)
		}
		tw.Flush()
	case "show":
		v, err := d.Approval(e.ctx, p, pos[0])
		if err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		if *asJSON {
			_ = json.NewEncoder(e.stdout).Encode(v)
			return exitOK
		}
		printApproval(e, v)
	case "approve", "deny":
		s, err := d.Decide(e.ctx, p, dispatch.Vote{ApprovalID: pos[0], Approve: verb == "approve", Comment: *comment, Channel: approval.ChannelCLI})
		if err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		switch {
		case s.Status == dispatch.StatusRefused:
			fmt.Fprintf(e.stdout, "denied %s: call %s refused\n", pos[0], s.ID)
		case s.Status == dispatch.StatusPending:
			fmt.Fprintf(e.stdout, "approved %s: %d of %d approvals; still pending\n", pos[0], s.Approval.Approvals(), s.Approval.MinApprovals)
		default:
			fmt.Fprintf(e.stdout, "approved %s: call %s is %s\n", pos[0], s.ID, s.Status)
			if *wait > 0 && s.Status == dispatch.StatusApproved {
				s, err = d.Wait(e.ctx, p, s.ID, *wait)
				if err != nil {
					e.errorf("%v", err)
					return exitFailed
				}
				if s.Status == dispatch.StatusApproved {
					fmt.Fprintf(e.stdout, "not run yet: a running `warden serve` on this store runs it\n")
				} else {
					fmt.Fprintf(e.stdout, "call %s %s", s.ID, s.Status)
					if s.Error != "" {
						fmt.Fprintf(e.stdout, ": %s", s.Error)
					}
					fmt.Fprintln(e.stdout)
				}
			}
		}
	}
	return exitOK
}

func printApproval(e *env, v dispatch.ApprovalView) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "approval:\t%s (%s)\n", v.ID, v.Status)
	fmt.Fprintf(tw, "call:\t%s (%s)\n", v.CallID, v.CallStatus)
	fmt.Fprintf(tw, "agent:\t%s/%s\n", v.Tenant, v.Agent)
	fmt.Fprintf(tw, "action:\t%s.%s (%s)\n", v.Connector, v.Action, v.ActionType)
	if v.Environment != "" {
		fmt.Fprintf(tw, "environment:\t%s\n", v.Environment)
	}
	if v.Trigger != "" {
		fmt.Fprintf(tw, "trigger:\t%s\n", v.Trigger)
	}
	fmt.Fprintf(tw, "args:\t%s\n", string(v.Args))
	fmt.Fprintf(tw, "rules:\t%s\n", strings.Join(v.Rules, ", "))
	fmt.Fprintf(tw, "reason:\t%s\n", v.Reason)
	fmt.Fprintf(tw, "requested:\t%s\n", v.RequestedAt.Format(time.RFC3339))
	if v.ExpiresAt != nil {
		fmt.Fprintf(tw, "expires:\t%s\n", v.ExpiresAt.Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "needs:\t%d approval(s)\n", v.MinApprovals)
	for _, vote := range v.Votes {
		c := ""
		if vote.Comment != "" {
			c = ": " + vote.Comment
		}
		fmt.Fprintf(tw, "vote:\t%s %s via %s at %s%s\n", vote.Approver, map[bool]string{true: "approved", false: "denied"}[vote.Approve], vote.Channel, vote.At.Format(time.RFC3339), c)
	}
	if v.Error != "" {
		fmt.Fprintf(tw, "error:\t%s\n", v.Error)
	}
	tw.Flush()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// createApproverToken is `tokens create --role approver` with --agents or
// --connectors.
func createApproverToken(e *env, st store.Store, p call.Principal, agents, connectors string) (string, store.TokenInfo, error) {
	return st.CreateApproverToken(e.ctx, p, approval.Scope{Agents: splitList(agents), Connectors: splitList(connectors)})
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
