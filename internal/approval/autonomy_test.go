package approval_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/approval"
)

func TestSummarize(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var outs []approval.Outcome
	add := func(agent, action, status string, n int, decideAfter time.Duration) {
		for i := range n {
			o := approval.Outcome{Tenant: "acme", Agent: agent, Connector: "c", Action: action, Status: status, RequestedAt: t0.Add(time.Duration(i) * time.Hour)}
			if status == "approved" || status == "denied" {
				o.DecidedAt = o.RequestedAt.Add(decideAfter + time.Duration(i)*time.Second)
			}
			outs = append(outs, o)
		}
	}
	add("bot", "create_pr", "approved", 48, time.Minute)
	add("bot", "refund", "denied", 3, 2*time.Minute)
	add("bot", "refund", "approved", 30, time.Minute)
	add("bot", "deploy", "approved", 5, 10*time.Second)
	add("bot", "delete", "expired", 4, 0)
	add("bot", "delete", "approved", 1, 0)
	add("bot", "flaky", "approved", 20, time.Second)
	add("bot", "flaky", "expired", 3, 0) // 3 of 23 expired: more than a tenth
	add("bot", "fresh", "pending", 2, 0)
	add("other", "create_pr", "approved", 20, time.Second) // exactly the threshold

	rows := approval.Summarize(outs, "30 days")
	type want struct {
		approved, denied, expired, pending int
		median                             time.Duration
		rec, advice                        string
	}
	wants := map[string]want{
		"bot/create_pr":   {48, 0, 0, 0, time.Minute + 23500*time.Millisecond, approval.RecommendOn, "create_pr: 48 approved, 0 denied in 30 days: consider `on`"},
		"bot/refund":      {30, 3, 0, 0, time.Minute + 16*time.Second, approval.RecommendKeepAsk, "refund: 3 denied, 30 approved in 30 days: keep `ask`"},
		"bot/deploy":      {5, 0, 0, 0, 12 * time.Second, approval.RecommendEvidence, "deploy: 5 approved, 0 denied in 30 days: keep `ask` (20 approvals without a denial suggest `on`)"},
		"bot/delete":      {1, 0, 4, 0, 0, approval.RecommendReview, "delete: 4 of 5 requests expired unanswered in 30 days: review who is asked (keep `ask`)"},
		"bot/flaky":       {20, 0, 3, 0, time.Second + 9500*time.Millisecond, approval.RecommendEvidence, ""},
		"bot/fresh":       {0, 0, 0, 2, 0, approval.RecommendEvidence, ""},
		"other/create_pr": {20, 0, 0, 0, time.Second + 9500*time.Millisecond, approval.RecommendOn, ""},
	}
	if len(rows) != len(wants) {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), len(wants), rows)
	}
	for i, r := range rows {
		if i > 0 && fmt.Sprint(rows[i-1].Agent, rows[i-1].Action) > fmt.Sprint(r.Agent, r.Action) {
			t.Errorf("rows not sorted at %d", i)
		}
		k := r.Agent + "/" + r.Action
		w, ok := wants[k]
		if !ok {
			t.Errorf("unexpected row %s", k)
			continue
		}
		if r.Approved != w.approved || r.Denied != w.denied || r.Expired != w.expired || r.Pending != w.pending {
			t.Errorf("%s: got %d/%d/%d/%d, want %d/%d/%d/%d approved/denied/expired/pending", k, r.Approved, r.Denied, r.Expired, r.Pending, w.approved, w.denied, w.expired, w.pending)
		}
		if r.MedianDecision != w.median {
			t.Errorf("%s: median %v, want %v", k, r.MedianDecision, w.median)
		}
		if r.Recommendation != w.rec {
			t.Errorf("%s: recommendation %q, want %q", k, r.Recommendation, w.rec)
		}
		if w.advice != "" && r.Advice != w.advice {
			t.Errorf("%s: advice %q, want %q", k, r.Advice, w.advice)
		}
	}
}
