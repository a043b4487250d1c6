package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/server"
)

// warden autonomy [--since 30d] [--json] [--tenant T] [--agent A] [--db]
//
// Evidence for widening autonomy: per agent × connector × action, how the
// approval requests in the window were decided, the median time to a
// decision, and a recommendation (thresholds in internal/approval
// autonomy.go). It reads the store only and never changes config.
func runAutonomy(e *env, args []string) int {
	fs := newFlags("autonomy", "autonomy [--since 30d] [--json] [--tenant T] [--agent A] [--db PATH]")
	db := dbFlag(fs)
	since := fs.String("since", "30d", "the window: a duration ago (30d, 72h) or an RFC 3339 time")
	asJSON := fs.Bool("json", false, "print JSON")
	tenant := fs.String("tenant", "", "only this tenant")
	agent := fs.String("agent", "", "only this agent")
	pos, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(pos) != 0 {
		e.errorf("autonomy takes no arguments")
		return exitBadArgs
	}
	now := time.Now()
	from, err := server.ParseTime(*since, now)
	if err != nil {
		e.errorf("--since: %v", err)
		return exitBadArgs
	}
	st, ok := openStore(e, *db)
	if !ok {
		return exitFailed
	}
	defer st.Close()
	calls, err := st.ApprovalCallsSince(e.ctx, from)
	if err != nil {
		e.errorf("%v", err)
		return exitFailed
	}
	var outs []approval.Outcome
	for _, c := range calls {
		if (*tenant != "" && c.Tenant != *tenant) || (*agent != "" && c.Agent != *agent) {
			continue
		}
		outs = append(outs, outcomeOf(c))
	}
	rows := approval.Summarize(outs, windowName(*since, from, now))
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"since": from.UTC().Format(time.RFC3339), "rows": rows})
		return exitOK
	}
	if len(rows) == 0 {
		fmt.Fprintf(e.stdout, "no approval requests since %s\n", from.UTC().Format(time.RFC3339))
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tAGENT\tCONNECTOR\tACTION\tAPPROVED\tDENIED\tEXPIRED\tPENDING\tMEDIAN\tRECOMMENDATION")
	for _, r := range rows {
		med := "-"
		if r.Approved+r.Denied > 0 {
			med = r.MedianDecision.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Tenant, r.Agent, r.Connector, r.Action, r.Approved, r.Denied, r.Expired, r.Pending, med, r.Recommendation)
	}
	tw.Flush()
	fmt.Fprintln(e.stdout)
	for _, r := range rows {
		fmt.Fprintf(e.stdout, "%s/%s %s.%s\n", r.Tenant, r.Agent, r.Connector, r.Advice)
	}
	fmt.Fprintln(e.stdout, "\nwarden changes nothing: edit the agent's permissions in the config and send it through review.")
	return exitOK
}

// outcomeOf reads an approval's outcome from a call's state: the time of the
// deciding vote (the denial, or the approval that completed the request).
func outcomeOf(c *dispatch.State) approval.Outcome {
	v := dispatch.View(c)
	o := approval.Outcome{Tenant: c.Tenant, Agent: c.Agent, Connector: c.Connector, Action: c.Action, Status: v.Status, RequestedAt: c.CreatedAt}
	if v.Status == "approved" || v.Status == "denied" {
		if last := c.Approval.Last(); last != nil {
			o.DecidedAt = last.At
		}
	}
	return o
}

// windowName says "30 days" for 30d, else the duration or the time.
func windowName(since string, from, now time.Time) string {
	if d, ok := strings.CutSuffix(since, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil {
			if n == 1 {
				return "1 day"
			}
			return fmt.Sprintf("%d days", n)
		}
	}
	if _, err := time.ParseDuration(since); err == nil {
		return since
	}
	return "the " + now.Sub(from).Round(time.Hour).String() + " since " + from.UTC().Format(time.RFC3339)
}
