package dispatch_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/policy"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

const limitsConfig = `
kind: agent
name: a
permissions:
  c: {get: on}
budgets: {tokens_per_day: 1000, usd_per_day: 2}
---
kind: connector
name: c
type: http
base_url: https://example.com
actions:
  get: {type: read, method: GET, path: /}
`

// TestBudgetResetsAtUTCMidnight: with an injected clock, a day's budget
// used up (by POST /v1/usage reports or reported outcomes) refuses calls
// until the next UTC midnight, not a moment longer.
func TestBudgetResetsAtUTCMidnight(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := config.Parse([]config.File{{Name: "c.yaml", Data: []byte(limitsConfig)}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)
	d := dispatch.New(dispatch.Options{Store: st, Usage: st, Now: func() time.Time { return now }}, &dispatch.Snapshot{Engine: policy.New(cfg)})
	p := call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "a"}
	decide := func() *dispatch.State {
		t.Helper()
		s, err := d.Call(ctx, p, dispatch.Request{Connector: "c", Action: "get", FrontEnd: "rest", DecideOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	midnight := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

	// A reported outcome counts: 700 tokens.
	s := decide()
	if s.Decision != call.Allow {
		t.Fatalf("first call = %s %q, want ALLOW", s.Decision, s.Reason)
	}
	if _, err := d.ReportOutcome(ctx, p, s.ID, dispatch.Report{Status: dispatch.StatusSucceeded, Tokens: 700, CostUSD: 0.5}); err != nil {
		t.Fatal(err)
	}
	if s := decide(); s.Decision != call.Allow {
		t.Fatalf("at 700 of 1000 tokens = %s %q, want ALLOW", s.Decision, s.Reason)
	}
	// A usage report takes it to the budget.
	sum, err := d.ReportUsage(ctx, p, dispatch.UsageReport{RunID: "r1", Model: "m", InputTokens: 200, OutputTokens: 100, CostUSD: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Tokens != 1000 || sum.CostUSD != 0.75 || sum.Day != "2026-11-21" || !sum.ResetsAt.Equal(midnight) {
		t.Fatalf("usage summary = %+v, want 1000 tokens, $0.75 on 2026-11-21 resetting at midnight", sum)
	}

	for _, at := range []time.Time{now, midnight.Add(-time.Nanosecond)} {
		now = at
		s := decide()
		if s.Decision != call.Deny || !slices.Equal(s.Rules, []string{dispatch.RuleBudget}) || s.Status != dispatch.StatusRefused {
			t.Fatalf("at %s: %s %v %s, want a refused DENY by budget", at, s.Decision, s.Rules, s.Status)
		}
		for _, want := range []string{"tokens_per_day", "1000 of 1000 tokens used", "resets at 2026-11-22T00:00:00Z"} {
			if !strings.Contains(s.Reason, want) {
				t.Errorf("reason %q lacks %q", s.Reason, want)
			}
		}
		if s.ResetsAt == nil || !s.ResetsAt.Equal(midnight) {
			t.Errorf("resets_at = %v, want %s", s.ResetsAt, midnight)
		}
		recs, err := st.AuditRecords(ctx, sqlite.AuditFilter{CallID: s.ID})
		if err != nil || len(recs) != 1 || recs[0].Decision != "DENY" || recs[0].Outcome != audit.OutcomeRefused || !slices.Equal(recs[0].Rules, []string{dispatch.RuleBudget}) {
			t.Errorf("audit of the refusal = %+v, %v", recs, err)
		}
	}

	now = midnight // a new UTC day
	if s := decide(); s.Decision != call.Allow {
		t.Fatalf("at midnight = %s %q, want ALLOW: the budget reset", s.Decision, s.Reason)
	}
	// Dollars are a budget of their own.
	if _, err := d.ReportUsage(ctx, p, dispatch.UsageReport{CostUSD: 2}); err != nil {
		t.Fatal(err)
	}
	if s := decide(); s.Decision != call.Deny || !strings.Contains(s.Reason, "usd_per_day: $2.0000 of $2.00 used") ||
		!strings.Contains(s.Reason, "resets at 2026-11-23T00:00:00Z") {
		t.Fatalf("after $2 = %s %q, want DENY by usd_per_day resetting on the 23rd", s.Decision, s.Reason)
	}
}

// TestReportUsageRefusals: only agents report usage, never negative.
func TestReportUsageRefusals(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := config.Parse([]config.File{{Name: "c.yaml", Data: []byte(limitsConfig)}})
	if err != nil {
		t.Fatal(err)
	}
	d := dispatch.New(dispatch.Options{Store: st, Usage: st}, &dispatch.Snapshot{Engine: policy.New(cfg)})
	agent := call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "a"}
	cases := []struct {
		name string
		p    call.Principal
		r    dispatch.UsageReport
		want dispatch.Kind
	}{
		{"admin", call.Principal{Role: call.RoleAdmin}, dispatch.UsageReport{InputTokens: 1}, dispatch.Forbidden},
		{"negative tokens", agent, dispatch.UsageReport{OutputTokens: -1}, dispatch.Invalid},
		{"negative cost", agent, dispatch.UsageReport{CostUSD: -0.01}, dispatch.Invalid},
		{"overflow", agent, dispatch.UsageReport{InputTokens: 1 << 62, OutputTokens: 1 << 62}, dispatch.Invalid},
	}
	for _, c := range cases {
		_, err := d.ReportUsage(ctx, c.p, c.r)
		var de *dispatch.Error
		if !errors.As(err, &de) || de.Kind != c.want {
			t.Errorf("%s: err = %v, want kind %d", c.name, err, c.want)
		}
	}
}
