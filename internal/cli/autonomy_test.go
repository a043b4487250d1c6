package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// seedApprovals stores n decided approval requests for one action.
func seedApprovals(t *testing.T, st *sqlite.Store, agent, action, status string, n int, age time.Duration) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		created := time.Now().Add(-age).UTC()
		s := &dispatch.State{
			ID: call.NewID("call", created), Tenant: "default", Agent: agent, Connector: "github", Action: action,
			ActionType: "write", Decision: call.RequireApproval, CreatedAt: created, UpdatedAt: created,
			Args: []byte(`{}`), Approval: &approval.Request{ID: call.NewID("apr", created), MinApprovals: 1},
		}
		decided := created.Add(time.Duration(i+1) * time.Minute)
		switch status {
		case "approved":
			s.Status = dispatch.StatusSucceeded
			s.Approval.Votes = []approval.Vote{{Approver: "approver:alice", Channel: "slack", Approve: true, At: decided}}
		case "denied":
			s.Status = dispatch.StatusRefused
			s.Approval.Votes = []approval.Vote{{Approver: "approver:bob", Channel: "api", At: decided}}
		case "expired":
			s.Status = dispatch.StatusExpired
		}
		if err := st.Commit(ctx, &audit.Record{Kind: audit.KindDecision, CallID: s.ID, Time: created}, s); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAutonomy(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	st, err := sqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	seedApprovals(t, st, "pr-bot", "create_pr", "approved", 48, 24*time.Hour)
	seedApprovals(t, st, "pr-bot", "create_pr", "approved", 5, 40*24*time.Hour) // outside --since 30d
	seedApprovals(t, st, "pay-bot", "refund", "denied", 3, time.Hour)
	seedApprovals(t, st, "pay-bot", "refund", "approved", 7, time.Hour)
	seedApprovals(t, st, "pay-bot", "payout", "expired", 2, time.Hour)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := run(t, "autonomy", "--db", db)
	if code != 0 {
		t.Fatalf("autonomy: %d %s", code, errOut)
	}
	for _, want := range []string{
		"create_pr: 48 approved, 0 denied in 30 days: consider `on`",
		"refund: 3 denied, 7 approved in 30 days: keep `ask`",
		"payout: 2 of 2 requests expired unanswered",
		"warden changes nothing",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = run(t, "autonomy", "--db", db, "--since", "90d", "--json", "--agent", "pr-bot")
	if code != 0 {
		t.Fatalf("autonomy --json: %d %s", code, errOut)
	}
	var got struct {
		Rows []approval.Evidence `json:"rows"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got.Rows) != 1 {
		t.Fatalf("rows = %+v, want pr-bot's create_pr only", got.Rows)
	}
	r := got.Rows[0]
	// 53 approvals decided after 1..48 and 1..5 minutes: the median is the 27th, 22m.
	if r.Approved != 53 || r.Denied != 0 || r.Recommendation != approval.RecommendOn || r.MedianMS != (22*time.Minute).Milliseconds() {
		t.Errorf("row = %+v, want 53 approved, consider-on, median 22m", r)
	}
	if code, _, errOut := run(t, "autonomy", "--db", db, "--since", "soon"); code != exitBadArgs || !strings.Contains(errOut, "--since") {
		t.Errorf("bad --since: %d %s", code, errOut)
	}
}
