package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/limit"
)

// Rules naming the limit that refused a call, like RuleKillSwitch.
const (
	RuleRateLimit = "rate-limit" // a calls_per_minute token bucket was empty
	RuleBudget    = "budget"     // the day's tokens_per_day or usd_per_day was used up
)

// UsageStore keeps each agent's usage per UTC day, shared by every replica
// on the store. Without one (Options.Usage nil) daily budgets are not
// enforced and usage cannot be reported.
type UsageStore interface {
	// Usage is what tenant/agent used on day (limit.Day); zero when nothing.
	Usage(ctx context.Context, tenant, agent, day string) (limit.Usage, error)
	// RecordUsage appends rec (kind usage) to the audit trail and adds its
	// tokens and cost to its agent's usage on rec.Time's UTC day, in one
	// transaction. The store does the same for a reported_outcome record
	// committed through Store.Commit.
	RecordUsage(ctx context.Context, rec *audit.Record) error
}

// checkLimits refuses a call of a configured agent whose day's budget is
// used up or one of whose rate limits is reached: it returns the DENY
// verdict and when the limit resets, or nil when the call may go on to the
// policy. Budgets are checked first, so a call refused for its budget
// takes no token from a bucket. An error means the budget could not be
// read: the call must fail closed.
func (d *Dispatcher) checkLimits(ctx context.Context, a *config.Agent, req Request, now time.Time) (*call.Verdict, *time.Time, error) {
	b := limit.Budget{TokensPerDay: a.Budgets.TokensPerDay, USDPerDay: a.Budgets.USDPerDay}
	if b.Capped() && d.usage != nil {
		u, err := d.usage.Usage(ctx, a.Tenant, a.Name, limit.Day(now))
		if err != nil {
			return nil, nil, err
		}
		if what, over := b.Exhausted(u); over {
			reset := limit.NextReset(now)
			return &call.Verdict{Decision: call.Deny, Rules: []string{RuleBudget},
				Reason: fmt.Sprintf("denied: budget %s today (UTC); resets at %s", what, reset.Format(time.RFC3339))}, &reset, nil
		}
	}
	key := a.Tenant + "\x00" + a.Name
	wants := []limit.Want{{Key: key, Name: "budgets.calls_per_minute", PerMinute: a.Budgets.CallsPerMinute}}
	if rl := a.RateLimits[req.Connector]; rl != nil {
		ck := key + "\x00" + req.Connector
		wants = append(wants,
			limit.Want{Key: ck + "\x00" + config.AllActions, Name: "rate_limits." + req.Connector + "." + config.AllActions, PerMinute: rl[config.AllActions]},
			limit.Want{Key: ck + "\x00" + req.Action, Name: "rate_limits." + req.Connector + "." + req.Action, PerMinute: rl[req.Action]})
	}
	ref := d.limiter.Take(now, wants...)
	if ref == nil {
		return nil, nil, nil
	}
	// Whole seconds, rounded up: what Retry-After can say.
	wait := time.Duration(math.Ceil(ref.RetryAfter.Seconds())) * time.Second
	reset := now.Add(wait)
	return &call.Verdict{Decision: call.Deny, Rules: []string{RuleRateLimit},
		Reason: fmt.Sprintf("denied: rate limit %s (%d calls per minute) reached; next call allowed at %s (in %s)",
			ref.Want.Name, ref.Want.PerMinute, reset.Format(time.RFC3339), wait)}, &reset, nil
}

// UsageReport is what an agent's runtime reports it used (POST /v1/usage).
type UsageReport struct {
	RunID        string
	Model        string
	InputTokens  int64
	OutputTokens int64
	CostUSD      float64
	FrontEnd     string
}

// UsageSummary is the agent's usage today after a report, with its budget
// (zero: no cap) and when the day resets.
type UsageSummary struct {
	ID           string    `json:"id"` // the usage record's id in the audit trail
	Day          string    `json:"day"`
	Tokens       int64     `json:"tokens"`
	CostUSD      float64   `json:"cost_usd"`
	TokensPerDay int64     `json:"tokens_per_day,omitempty"`
	USDPerDay    float64   `json:"usd_per_day,omitempty"`
	ResetsAt     time.Time `json:"resets_at"`
}

// ReportUsage records tokens and cost an agent's run used, audited as a
// usage record, towards the agent's daily budgets.
func (d *Dispatcher) ReportUsage(ctx context.Context, p call.Principal, r UsageReport) (*UsageSummary, error) {
	if p.Role != call.RoleAgent || p.Agent == "" {
		return nil, errorf(Forbidden, "not_an_agent", "only agent tokens can report usage")
	}
	if r.InputTokens < 0 || r.OutputTokens < 0 || r.CostUSD < 0 || math.IsNaN(r.CostUSD) || math.IsInf(r.CostUSD, 0) {
		return nil, errorf(Invalid, "invalid_field", "input_tokens, output_tokens and cost_usd must not be negative")
	}
	if r.InputTokens > math.MaxInt64-r.OutputTokens {
		return nil, errorf(Invalid, "invalid_field", "input_tokens + output_tokens is too large")
	}
	if d.usage == nil {
		return nil, &Error{Kind: Unavailable, Code: "unavailable", Message: "usage cannot be recorded by this server"}
	}
	snap := d.snap.Load()
	now := d.now().UTC()
	args, err := json.Marshal(map[string]any{"model": r.Model, "input_tokens": r.InputTokens, "output_tokens": r.OutputTokens})
	if err != nil {
		return nil, &Error{Kind: Invalid, Code: "invalid_field", Message: "model: not representable as JSON", Err: err}
	}
	rec := &audit.Record{
		ID: call.NewID("rec", now), Time: now, Tenant: p.Tenant, Agent: p.Agent, RunID: r.RunID,
		FrontEnd: r.FrontEnd, Kind: audit.KindUsage, Args: d.redactJSON(args),
		ConfigVersion: snap.Engine.Version(),
		Tokens:        r.InputTokens + r.OutputTokens, CostUSD: r.CostUSD,
	}
	if err := d.usage.RecordUsage(ctx, rec); err != nil {
		return nil, &Error{Kind: Unavailable, Code: "audit_unavailable", Message: "the usage could not be recorded", Err: err}
	}
	d.obs.Reported(d.labels(&State{Tenant: p.Tenant, Agent: p.Agent}), rec.Tokens, rec.CostUSD)
	sum := &UsageSummary{ID: rec.ID, Day: limit.Day(now), ResetsAt: limit.NextReset(now)}
	if a, ok := snap.Engine.Agent(p.Tenant, p.Agent); ok {
		sum.TokensPerDay, sum.USDPerDay = a.Budgets.TokensPerDay, a.Budgets.USDPerDay
	}
	u, err := d.usage.Usage(ctx, p.Tenant, p.Agent, sum.Day)
	if err != nil {
		return nil, &Error{Kind: Unavailable, Code: "unavailable", Message: "the usage was recorded but today's total cannot be read", Err: err}
	}
	sum.Tokens, sum.CostUSD = u.Tokens, u.CostUSD
	return sum, nil
}

// limits is checkLimits for the agent p names, if the config knows it; it
// sets st.ResetsAt when the call is refused.
func (d *Dispatcher) limits(ctx context.Context, snap *Snapshot, p call.Principal, req Request, st *State) (*call.Verdict, error) {
	a, ok := snap.Engine.Agent(p.Tenant, p.Agent)
	if !ok {
		return nil, nil // the policy denies an unknown agent
	}
	v, reset, err := d.checkLimits(ctx, a, req, st.CreatedAt)
	if v != nil {
		st.ResetsAt = reset
	}
	return v, err
}
