package limit

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// TestBucket drives one bucket through a sequence of takes: burst, exact
// limit, continuous refill, and the wait a refusal reports.
func TestBucket(t *testing.T) {
	type step struct {
		at        time.Duration // since t0
		wantOK    bool
		wantRetry time.Duration // when refused
	}
	cases := []struct {
		name      string
		perMinute int64
		steps     []step
	}{
		{"burst up to the limit, then refused", 3, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, false, 20 * time.Second},
		}},
		{"exact limit: one a minute", 1, []step{
			{0, true, 0}, {59 * time.Second, false, time.Second}, {time.Minute, true, 0}, {time.Minute, false, time.Minute},
		}},
		{"refill is continuous: one token every 60s/N", 6, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0},
			{0, false, 10 * time.Second},
			{9 * time.Second, false, time.Second},
			{10 * time.Second, true, 0},
			{10 * time.Second, false, 10 * time.Second},
			{30 * time.Second, true, 0}, {30 * time.Second, true, 0}, {30 * time.Second, false, 10 * time.Second},
		}},
		{"refill never exceeds the burst", 2, []step{
			{0, true, 0}, {time.Hour, true, 0}, {time.Hour, true, 0}, {time.Hour, false, 30 * time.Second},
		}},
		{"a refused take consumes nothing", 1, []step{
			{0, true, 0}, {10 * time.Second, false, 50 * time.Second}, {20 * time.Second, false, 40 * time.Second}, {time.Minute, true, 0},
		}},
		{"no limit", 0, []step{{0, true, 0}, {0, true, 0}, {0, true, 0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := NewLimiter()
			for i, s := range c.steps {
				ref := l.Take(t0.Add(s.at), Want{Key: "k", Name: "calls_per_minute", PerMinute: c.perMinute})
				if got := ref == nil; got != s.wantOK {
					t.Fatalf("step %d at %s: allowed = %v, want %v", i, s.at, got, s.wantOK)
				}
				if ref != nil && ref.RetryAfter != s.wantRetry {
					t.Errorf("step %d at %s: retry after %s, want %s", i, s.at, ref.RetryAfter, s.wantRetry)
				}
			}
		})
	}
}

// TestTakeAllOrNothing: a call takes a token from every bucket it needs or
// from none, and the refusal names the limit that waits longest.
func TestTakeAllOrNothing(t *testing.T) {
	l := NewLimiter()
	agent := Want{Key: "a", Name: "agent", PerMinute: 3}
	action := Want{Key: "a/x", Name: "action", PerMinute: 1}
	if ref := l.Take(t0, agent, action); ref != nil {
		t.Fatalf("first take refused by %s", ref.Want.Name)
	}
	ref := l.Take(t0, agent, action)
	if ref == nil || ref.Want.Name != "action" || ref.RetryAfter != time.Minute {
		t.Fatalf("second take = %+v, want refused by action for 1m", ref)
	}
	// The refusal took nothing from the agent: two left.
	for i := range 2 {
		if ref := l.Take(t0, agent); ref != nil {
			t.Fatalf("agent take %d refused: %+v", i, ref)
		}
	}
	ref = l.Take(t0.Add(time.Second), agent, action)
	if ref == nil || ref.Want.Name != "action" || ref.RetryAfter != 59*time.Second {
		t.Fatalf("both empty = %+v, want the action's longer wait (59s)", ref)
	}
}

// TestLimitChange: a new config version changing a limit keeps the calls
// already counted in the window.
func TestLimitChange(t *testing.T) {
	l := NewLimiter()
	for range 5 {
		if ref := l.Take(t0, Want{Key: "k", PerMinute: 10}); ref != nil {
			t.Fatal("refused within the limit")
		}
	}
	if ref := l.Take(t0, Want{Key: "k", PerMinute: 4}); ref == nil {
		t.Fatal("5 used, limit lowered to 4: allowed, want refused")
	}
	for i := range 15 {
		if ref := l.Take(t0, Want{Key: "k", PerMinute: 20}); ref != nil {
			t.Fatalf("5 used, limit raised to 20: call %d refused, want 15 more allowed", 6+i)
		}
	}
	if ref := l.Take(t0, Want{Key: "k", PerMinute: 20}); ref == nil {
		t.Fatal("the 21st call at a limit of 20: allowed")
	}
}

// TestSweep: idle full buckets are forgotten, so memory follows use.
func TestSweep(t *testing.T) {
	l := NewLimiter()
	for i := range sweepEvery - 1 {
		l.Take(t0, Want{Key: string(rune('a' + i%26)), PerMinute: 5})
	}
	if l.Len() != 26 {
		t.Fatalf("buckets = %d, want 26", l.Len())
	}
	l.Take(t0.Add(time.Minute), Want{Key: "fresh", PerMinute: 5})
	if got := l.Len(); got != 1 {
		t.Fatalf("after a sweep a minute later: %d buckets, want 1", got)
	}
}

func TestBudgetExhausted(t *testing.T) {
	cases := []struct {
		name     string
		b        Budget
		u        Usage
		wantOver bool
		wantWhat string
	}{
		{"no cap", Budget{}, Usage{Tokens: 1 << 40, CostUSD: 1e9}, false, ""},
		{"under", Budget{TokensPerDay: 1000, USDPerDay: 5}, Usage{Tokens: 999, CostUSD: 4.99}, false, ""},
		{"tokens exactly at the budget", Budget{TokensPerDay: 1000}, Usage{Tokens: 1000}, true, "tokens_per_day: 1000 of 1000 tokens used"},
		{"tokens past the budget", Budget{TokensPerDay: 1000, USDPerDay: 5}, Usage{Tokens: 1500, CostUSD: 1}, true, "tokens_per_day: 1500 of 1000 tokens used"},
		{"usd at the budget", Budget{USDPerDay: 2}, Usage{CostUSD: 2}, true, "usd_per_day: $2.0000 of $2.00 used"},
		{"usd only capped", Budget{USDPerDay: 2}, Usage{Tokens: 1 << 40, CostUSD: 1.5}, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			what, over := c.b.Exhausted(c.u)
			if over != c.wantOver || what != c.wantWhat {
				t.Errorf("Exhausted = %q, %v; want %q, %v", what, over, c.wantWhat, c.wantOver)
			}
		})
	}
}

func TestDayAndReset(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	cases := []struct {
		at        time.Time
		wantDay   string
		wantReset time.Time
	}{
		{time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), "2026-11-21", time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 11, 21, 23, 59, 59, 999999999, time.UTC), "2026-11-21", time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), "2026-12-31", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		// 00:30 in Paris is still the day before in UTC.
		{time.Date(2026, 11, 22, 0, 30, 0, 0, paris), "2026-11-21", time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		if got := Day(c.at); got != c.wantDay {
			t.Errorf("Day(%s) = %s, want %s", c.at, got, c.wantDay)
		}
		if got := NextReset(c.at); !got.Equal(c.wantReset) {
			t.Errorf("NextReset(%s) = %s, want %s", c.at, got, c.wantReset)
		}
	}
}
