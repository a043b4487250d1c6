package alert

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Notification channels a rule may name.
const (
	ChannelWebhook = "webhook"
	ChannelSlack   = "slack"
)

// Event kinds, as webhooks receive them.
const (
	EventFiring   = "alert.firing"
	EventResolved = "alert.resolved"
)

// Rule is one configured alert.
type Rule struct {
	Name   string
	When   Condition
	Notify []string // ChannelWebhook, ChannelSlack
}

// Event is what a Sender delivers: a rule started firing or resolved.
type Event struct {
	Event     string    `json:"event"` // EventFiring or EventResolved
	Rule      string    `json:"rule"`
	When      string    `json:"when"` // the condition, canonical
	Value     float64   `json:"value"`
	Threshold float64   `json:"threshold"`
	Since     time.Time `json:"since"`              // when it started firing
	At        time.Time `json:"at"`                 // this evaluation
	Resolved  bool      `json:"resolved,omitempty"` // EventResolved
	Duration  string    `json:"duration,omitempty"` // resolved: how long it fired
}

// Sender delivers alert events to one destination.
type Sender interface {
	Name() string
	SendAlert(ctx context.Context, e Event) error
}

// Options configure an Evaluator.
type Options struct {
	Rules   []Rule
	Senders map[string][]Sender // by channel: every webhook, the Slack channel
	// Backlog counts the calls waiting for a human now (the store's
	// pending calls); nil: approval_backlog rules never fire.
	Backlog  func(ctx context.Context) (int, error)
	Now      func() time.Time // default time.Now
	Interval time.Duration    // how often Run evaluates; default 15s
	Logger   *slog.Logger
}

// Evaluator counts what the dispatcher reports and evaluates the rules.
// Counting is cheap and never blocks on delivery; Evaluate sends.
type Evaluator struct {
	o Options
	w window

	mu    sync.Mutex // guards state; Evaluate holds it, sends included, so evaluations never overlap
	state []*ruleState
}

type ruleState struct {
	firing bool
	since  time.Time
	value  float64
	// sent is, per sender of the rule, the last event delivered: "" (none
	// yet), EventFiring or EventResolved. A sender whose delivery failed
	// is tried again at the next evaluation, so each sees one firing and
	// one resolved per episode.
	sent []string
	to   []Sender
}

// New returns an evaluator of o.Rules.
func New(o Options) *Evaluator {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Evaluator{o: o}
	for _, r := range o.Rules {
		s := &ruleState{}
		for _, ch := range r.Notify {
			s.to = append(s.to, o.Senders[ch]...)
		}
		s.sent = make([]string, len(s.to))
		e.state = append(e.state, s)
	}
	return e
}

// Decided counts a policy decision.
func (e *Evaluator) Decided(k Key, denied bool) {
	e.w.add(e.o.Now(), k, func(c *counts) {
		c.decided++
		if denied {
			c.denied++
		}
	})
}

// Executed counts a connector execution that reached an outcome.
func (e *Evaluator) Executed(k Key) {
	e.w.add(e.o.Now(), k, func(c *counts) { c.executed++ })
}

// ConnectorFailed counts an execution the connector reported failed.
func (e *Evaluator) ConnectorFailed(k Key) {
	e.w.add(e.o.Now(), k, func(c *counts) { c.failed++ })
}

// Cost counts reported spend.
func (e *Evaluator) Cost(k Key, usd float64) {
	if usd <= 0 {
		return
	}
	e.w.add(e.o.Now(), k, func(c *counts) { c.costUSD += usd })
}

// Run evaluates every Interval until ctx ends.
func (e *Evaluator) Run(ctx context.Context) {
	if e == nil {
		return
	}
	t := time.NewTicker(e.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.Evaluate(ctx)
		}
	}
}

// Value computes a condition's current value.
func (e *Evaluator) Value(ctx context.Context, c Condition) (float64, error) {
	now := e.o.Now()
	match := func(k Key) bool {
		if v, ok := c.Labels["agent"]; ok && k.Agent != v {
			return false
		}
		if v, ok := c.Labels["connector"]; ok && k.Connector != v {
			return false
		}
		return true
	}
	switch c.Metric {
	case DenyRate:
		s := e.w.sum(now, c.Window, match)
		return ratio(s.denied, s.decided), nil
	case ErrorRate:
		s := e.w.sum(now, c.Window, match)
		return ratio(s.failed, s.executed), nil
	case CostPerHour:
		s := e.w.sum(now, c.Window, match)
		return s.costUSD * float64(time.Hour) / float64(c.Window), nil
	case ApprovalBacklog:
		if e.o.Backlog == nil {
			return 0, nil
		}
		n, err := e.o.Backlog(ctx)
		return float64(n), err
	}
	return 0, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return min(a/b, 1) // failures counted in a slot before their execution
}

// Evaluate checks every rule once and sends what changed: a firing event
// when a rule starts firing, a resolved one when it stops. Senders that
// failed are retried at the next evaluation.
func (e *Evaluator) Evaluate(ctx context.Context) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, r := range e.o.Rules {
		s := e.state[i]
		v, err := e.Value(ctx, r.When)
		if err != nil {
			e.o.Logger.Error("alert: cannot evaluate", "rule", r.Name, "err", err)
			continue
		}
		now := e.o.Now().UTC()
		s.value = v
		switch holds := r.When.Holds(v); {
		case holds && !s.firing:
			s.firing, s.since = true, now
			e.o.Logger.Warn("alert firing", "rule", r.Name, "when", r.When.String(), "value", v)
		case !holds && s.firing:
			s.firing = false
			e.o.Logger.Info("alert resolved", "rule", r.Name, "when", r.When.String(), "value", v)
		}
		for j, to := range s.to {
			want := ""
			switch {
			case s.firing:
				want = EventFiring
			case s.sent[j] == EventFiring:
				want = EventResolved
			}
			if want == "" || s.sent[j] == want {
				continue
			}
			ev := Event{Event: want, Rule: r.Name, When: r.When.String(), Value: v, Threshold: r.When.Threshold, Since: s.since, At: now}
			if want == EventResolved {
				ev.Resolved = true
				ev.Duration = now.Sub(s.since).Round(time.Second).String()
			}
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := to.SendAlert(sctx, ev)
			cancel()
			if err != nil {
				e.o.Logger.Error("alert: delivery failed; retrying at the next evaluation", "rule", r.Name, "sink", to.Name(), "event", want, "err", err)
				continue
			}
			s.sent[j] = want
		}
	}
}

// Firing returns the names of the rules firing now.
func (e *Evaluator) Firing() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for i, s := range e.state {
		if s.firing {
			out = append(out, e.o.Rules[i].Name)
		}
	}
	return out
}
