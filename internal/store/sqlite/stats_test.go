package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
)

// TestStats: the dashboard's aggregates over a window, by tenant, with the
// volume in buckets and approval latency against the decision record.
func TestStats(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	add := func(ago time.Duration, r audit.Record) {
		t.Helper()
		r.Time = now.Add(-ago)
		if r.Tenant == "" {
			r.Tenant = "default"
		}
		if err := s.Append(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	add(2*time.Hour, audit.Record{Kind: "decision", Agent: "bot", CallID: "c0", Decision: string(call.Allow)}) // outside the hour
	add(50*time.Minute, audit.Record{Kind: "decision", Agent: "bot", CallID: "c1", Connector: "pay", Decision: string(call.Allow)})
	add(50*time.Minute, audit.Record{Kind: "outcome", Agent: "bot", CallID: "c1", Connector: "pay", Decision: string(call.Allow), Outcome: "failed"})
	add(10*time.Minute, audit.Record{Kind: "decision", Agent: "bot", CallID: "c2", Connector: "pay", Decision: string(call.RequireApproval)})
	add(8*time.Minute, audit.Record{Kind: "approval", Agent: "bot", CallID: "c2", Connector: "pay", Decision: string(call.RequireApproval)})
	add(8*time.Minute, audit.Record{Kind: "outcome", Agent: "bot", CallID: "c2", Connector: "pay", Outcome: "succeeded", CostUSD: 0.5, Tokens: 100})
	add(time.Minute, audit.Record{Kind: "decision", Agent: "bot", CallID: "c3", Decision: string(call.Deny), Outcome: "refused"})
	add(time.Minute, audit.Record{Kind: "decision", Tenant: "other", Agent: "bot", CallID: "c4", Decision: string(call.Deny)})
	add(30*time.Second, audit.Record{Kind: "usage", Agent: "bot", CostUSD: 0.25, Tokens: 50})
	add(0, audit.Record{Kind: "decision", Agent: "bot", CallID: "c5", Decision: string(call.Allow)}) // the window's last instant

	// A window that does not start on a whole second.
	st, err := s.Stats(ctx, StatsQuery{Tenant: "default", Since: now.Add(-time.Hour + 300*time.Millisecond), Bucket: 5 * time.Minute}, now)
	if err != nil {
		t.Fatal(err)
	}
	if st.Calls != 4 || st.Decisions["ALLOW"] != 2 || st.Decisions["REQUIRE_APPROVAL"] != 1 || st.Decisions["DENY"] != 1 {
		t.Errorf("calls %d decisions %v, want 4: 2 ALLOW, one of the others", st.Calls, st.Decisions)
	}
	if len(st.Volume) != 12 || st.Volume[2] != 1 || st.Volume[10] != 1 || st.Volume[11] != 2 {
		t.Errorf("volume %v, want 12 buckets with calls 1 in 2, 1 in 10 and 2 in 11", st.Volume)
	}
	if got := st.Connectors["pay"]; got != (Outcomes{Succeeded: 1, Failed: 1}) {
		t.Errorf("pay outcomes %+v, want 1 succeeded 1 failed", got)
	}
	if len(st.ApprovalLatency) != 1 || st.ApprovalLatency[0] != 2*time.Minute {
		t.Errorf("approval latency %v, want [2m]", st.ApprovalLatency)
	}
	if got := st.Usage["default/bot"]; got.Tokens != 150 || got.CostUSD != 0.75 {
		t.Errorf("usage %+v, want 150 tokens $0.75", got)
	}
	all, err := s.Stats(ctx, StatsQuery{Since: now.Add(-24 * time.Hour), Bucket: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	if all.Calls != 6 || len(all.Volume) != 24 || all.Truncated {
		t.Errorf("every tenant over a day: %d calls in %d buckets (truncated %v), want 6 in 24", all.Calls, len(all.Volume), all.Truncated)
	}

	// Kill switches and the live activation.
	if _, err := s.Kill(ctx, "default", "bot", "admin:root", "loop"); err != nil {
		t.Fatal(err)
	}
	ks, err := s.KillSwitches(ctx)
	if err != nil || len(ks) != 1 || ks[0].By != "admin:root" || ks[0].Why != "loop" || ks[0].At.IsZero() {
		t.Fatalf("kill switches: %+v %v", ks, err)
	}
	if a, err := s.LiveActivation(ctx); a != nil || err != nil {
		t.Fatalf("live activation of an empty store: %+v %v, want nil", a, err)
	}
	if _, _, err := s.ApplyConfig(ctx, ConfigVersion{Version: "abc", Files: map[string]string{}}, "alice"); err != nil {
		t.Fatal(err)
	}
	if a, err := s.LiveActivation(ctx); err != nil || a == nil || a.Version != "abc" || a.Kind != "apply" || a.By != "alice" || a.At.IsZero() {
		t.Fatalf("live activation: %+v %v", a, err)
	}
}
