package alert

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// clock is an injected time source tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fakeSender struct {
	mu     sync.Mutex
	events []Event
	fail   int // fail this many sends first
}

func (f *fakeSender) Name() string { return "fake" }
func (f *fakeSender) SendAlert(_ context.Context, e Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return errors.New("receiver down")
	}
	f.events = append(f.events, e)
	return nil
}

func (f *fakeSender) kinds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		out = append(out, e.Rule+":"+e.Event)
	}
	return out
}

func mustParse(t *testing.T, s string) Condition {
	t.Helper()
	c, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func eq(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestEvaluateFiresOnceAndResolves: a rule sends one firing event while
// its condition holds, however many evaluations, and one resolved event
// once the window has moved past the denials.
func TestEvaluateFiresOnceAndResolves(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 1, 2, 13, 0, 0, time.UTC)}
	s := &fakeSender{}
	backlog := 0
	e := New(Options{
		Rules: []Rule{
			{Name: "denials", When: mustParse(t, "deny_rate > 0.2 over 5m"), Notify: []string{ChannelWebhook}},
			{Name: "gh-errors", When: mustParse(t, "error_rate{connector=github} > 0.1 over 5m"), Notify: []string{ChannelWebhook}},
			{Name: "spend", When: mustParse(t, "cost_per_hour{agent=bot} > 10"), Notify: []string{ChannelWebhook}},
			{Name: "backlog", When: mustParse(t, "approval_backlog > 20"), Notify: []string{ChannelWebhook}},
		},
		Senders: map[string][]Sender{ChannelWebhook: {s}},
		Backlog: func(context.Context) (int, error) { return backlog, nil },
		Now:     clk.Now,
	})
	ctx := context.Background()
	bot := Key{Agent: "bot", Connector: "github"}

	// 10 decisions, 2 denied: 0.2 is not > 0.2.
	for i := range 10 {
		e.Decided(bot, i < 2)
	}
	e.Evaluate(ctx)
	if got := s.kinds(); len(got) != 0 {
		t.Fatalf("at the threshold: sent %v, want nothing", got)
	}
	e.Decided(bot, true) // 3/11
	for range 3 {
		e.Evaluate(ctx)
		clk.Add(15 * time.Second)
	}
	if got, want := s.kinds(), []string{"denials:alert.firing"}; !eq(got, want) {
		t.Fatalf("after crossing: got %v, want %v", got, want)
	}
	if ev := s.events[0]; ev.Value < 0.27 || ev.Value > 0.28 || ev.Threshold != 0.2 || ev.When != "deny_rate > 0.2 over 5m" || ev.Since.IsZero() {
		t.Errorf("firing event: %+v", ev)
	}
	// The denials leave the 5 minute window: resolved, once.
	clk.Add(5 * time.Minute)
	e.Evaluate(ctx)
	e.Evaluate(ctx)
	if got, want := s.kinds(), []string{"denials:alert.firing", "denials:alert.resolved"}; !eq(got, want) {
		t.Fatalf("after the window: got %v, want %v", got, want)
	}
	if ev := s.events[1]; !ev.Resolved || ev.Duration == "" {
		t.Errorf("resolved event: %+v", ev)
	}

	// Errors of another connector do not count for github.
	other := Key{Agent: "bot", Connector: "slack"}
	for range 10 {
		e.Executed(other)
		e.ConnectorFailed(other)
		e.Executed(bot)
	}
	e.ConnectorFailed(bot) // 1/10 = 0.1: not above
	e.Evaluate(ctx)
	e.ConnectorFailed(bot) // 2/10
	e.Evaluate(ctx)
	// Cost over the default 1h window: $3 is $3 an hour, $11 is over $10;
	// another agent's spend does not count for bot.
	e.Cost(bot, 3)
	e.Evaluate(ctx)
	e.Cost(bot, 8)
	e.Cost(Key{Agent: "other"}, 100)
	backlog = 21
	e.Evaluate(ctx)
	want := []string{"denials:alert.firing", "denials:alert.resolved", "gh-errors:alert.firing", "spend:alert.firing", "backlog:alert.firing"}
	if got := s.kinds(); !eq(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := e.Firing(); !eq(got, []string{"gh-errors", "spend", "backlog"}) {
		t.Errorf("Firing() = %v", got)
	}
	backlog = 3
	e.Evaluate(ctx)
	if got := s.kinds(); got[len(got)-1] != "backlog:alert.resolved" {
		t.Errorf("backlog back to 3: got %v", got)
	}
}

// TestEvaluateRetriesFailedDelivery: a delivery that fails is tried again
// at the next evaluation, and the event still goes out once.
func TestEvaluateRetriesFailedDelivery(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	bad, good := &fakeSender{fail: 2}, &fakeSender{}
	n := 30
	e := New(Options{
		Rules:   []Rule{{Name: "backlog", When: mustParse(t, "approval_backlog >= 30"), Notify: []string{ChannelWebhook, ChannelSlack}}},
		Senders: map[string][]Sender{ChannelWebhook: {bad}, ChannelSlack: {good}},
		Backlog: func(context.Context) (int, error) { return n, nil },
		Now:     clk.Now,
	})
	ctx := context.Background()
	for range 4 {
		e.Evaluate(ctx)
	}
	if got, want := bad.kinds(), []string{"backlog:alert.firing"}; !eq(got, want) {
		t.Errorf("retried sender: got %v, want %v", got, want)
	}
	if got, want := good.kinds(), []string{"backlog:alert.firing"}; !eq(got, want) {
		t.Errorf("healthy sender: got %v, want %v", got, want)
	}
	n = 0
	e.Evaluate(ctx)
	if got := good.kinds(); len(got) != 2 || got[1] != "backlog:alert.resolved" {
		t.Errorf("resolved: %v", got)
	}
}

// TestWindowSlots: counts older than the window are not summed, and a
// bucket reused for a later slot starts empty.
func TestWindowSlots(t *testing.T) {
	var w window
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	all := func(Key) bool { return true }
	w.add(t0, Key{}, func(c *counts) { c.decided++ })
	w.add(t0.Add(4*time.Minute), Key{}, func(c *counts) { c.decided++ })
	if got := w.sum(t0.Add(4*time.Minute), 5*time.Minute, all).decided; got != 2 {
		t.Errorf("within 5m: %v, want 2", got)
	}
	if got := w.sum(t0.Add(6*time.Minute), 5*time.Minute, all).decided; got != 1 {
		t.Errorf("after 6m: %v, want 1", got)
	}
	// An hour and a slot later the first bucket is reused.
	later := t0.Add(MaxWindow + slot)
	w.add(later, Key{}, func(c *counts) { c.decided += 5 })
	if got := w.sum(later, MaxWindow, all).decided; got != 6 {
		t.Errorf("after the ring wrapped: %v, want 6 (the 4m count and the new 5; the first is gone)", got)
	}
}
