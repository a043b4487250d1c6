package dispatch_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/policy"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// countingExecutor counts executions.
type countingExecutor struct{ n int }

func (e *countingExecutor) Execute(context.Context, string, map[string]any) (*dispatch.Outcome, error) {
	e.n++
	return &dispatch.Outcome{Result: map[string]any{"ok": true}}, nil
}

// TestApprovedDecideOnlyIsNotExecuted: a call asked of POST /v1/decide that
// needed a human is, once approved, decided — for the runtime to run and
// report — and never executed by warden, whichever path picks it up. Its
// reported outcome names warden's approver, not a runtime's user.
func TestApprovedDecideOnlyIsNotExecuted(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := config.Parse([]config.File{{Name: "c.yaml", Data: []byte(`
kind: connector
name: up
type: http
base_url: http://127.0.0.1:1
actions: {pay: {type: external, method: POST, path: /pay}}
---
kind: agent
name: a
permissions: {up: {pay: ask}}
`)}})
	if err != nil {
		t.Fatal(err)
	}
	exec := &countingExecutor{}
	d := dispatch.New(dispatch.Options{Store: st, Approvals: st},
		&dispatch.Snapshot{Engine: policy.New(cfg), Executors: map[string]dispatch.Executor{"up": exec}})
	agent := call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "a"}
	tok, _, err := st.CreateApproverToken(ctx, call.Principal{Role: call.RoleApprover, Tenant: call.DefaultTenant, Name: "alice"}, approval.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	approver, err := st.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{"ExecuteApproval", "ExecuteApproved"} {
		t.Run(path, func(t *testing.T) {
			c, err := d.Call(ctx, agent, dispatch.Request{Connector: "up", Action: "pay", FrontEnd: audit.FrontEndREST, DecideOnly: true})
			if err != nil || c.Status != dispatch.StatusPending {
				t.Fatalf("decide = %+v, %v; want pending", c, err)
			}
			voted, err := d.Decide(ctx, approver, dispatch.Vote{ApprovalID: c.Approval.ID, Approve: true, Channel: approval.ChannelAPI})
			if err != nil || voted.Status != dispatch.StatusApproved {
				t.Fatalf("approve = %+v, %v", voted, err)
			}
			if path == "ExecuteApproval" {
				_, err = d.ExecuteApproval(ctx, voted)
			} else {
				_, err = d.ExecuteApproved(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.CallState(ctx, c.ID)
			if err != nil || got.Status != dispatch.StatusDecided || exec.n != 0 {
				t.Fatalf("after approval: status %v, %d executions, %v; want decided and none", got.Status, exec.n, err)
			}
			if _, err := d.ReportOutcome(ctx, agent, c.ID, dispatch.Report{Status: dispatch.StatusSucceeded}); err != nil {
				t.Fatalf("report: %v", err)
			}
			recs, err := st.AuditRecords(ctx, sqlite.AuditFilter{CallID: c.ID})
			if err != nil {
				t.Fatal(err)
			}
			last := recs[len(recs)-1]
			if last.Kind != audit.KindReportedOutcome || last.Approval == nil || last.Approval.Approver != approver.Identity() {
				t.Errorf("reported outcome record = %+v (approval %+v); want the approver %s", last, last.Approval, approver.Identity())
			}
		})
	}
}
