package app

import (
	"context"
	"errors"

	"github.com/warden-dev/warden/internal/server"
	"github.com/warden-dev/warden/internal/store"
)

// operations backs the console's admin pages (server.Operations) with the
// store and the CLI's own functions (operate.go), so a kill, revive or
// rollback from the console is the CLI's, audited with trigger
// web:<admin>.
type operations struct{ s store.Store }

var _ server.Operations = operations{}

func (o operations) Stats(ctx context.Context, q server.StatsQuery) (*server.Stats, error) {
	st, err := o.s.Stats(ctx, store.StatsQuery{Tenant: q.Tenant, Since: q.Since, Bucket: q.Bucket}, q.Now)
	if err != nil {
		return nil, err
	}
	out := &server.Stats{Calls: st.Calls, Volume: st.Volume, Decisions: st.Decisions, ApprovalLatency: st.ApprovalLatency,
		Expired: st.Expired, Truncated: st.Truncated,
		Connectors: make(map[string]server.ConnectorOutcomes, len(st.Connectors)), Usage: make(map[string]server.AgentUsage, len(st.Usage))}
	for k, v := range st.Connectors {
		out.Connectors[k] = server.ConnectorOutcomes(v)
	}
	for k, v := range st.Usage {
		out.Usage[k] = server.AgentUsage(v)
	}
	return out, nil
}

func (o operations) KillSwitches(ctx context.Context) ([]server.KillSwitch, error) {
	ks, err := o.s.KillSwitches(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]server.KillSwitch, len(ks))
	for i, k := range ks {
		out[i] = server.KillSwitch(k)
	}
	return out, nil
}

func (o operations) LiveActivation(ctx context.Context) (*server.Activation, error) {
	a, err := o.s.LiveActivation(ctx)
	if a == nil || err != nil {
		return nil, err
	}
	return &server.Activation{Version: a.Version, Kind: a.Kind, By: a.By, At: a.At}, nil
}

func (o operations) SwitchKill(ctx context.Context, k server.KillRequest) (bool, string, error) {
	return SwitchKill(ctx, o.s, KillChange{Revive: k.Revive, Tenant: k.Tenant, Agent: k.Agent, By: k.By, Reason: k.Reason, Channel: "web"})
}

func (o operations) Rollback(ctx context.Context, by string) (bool, string, error) {
	from, target, msg, err := RollbackConfig(ctx, o.s, "", by, "web")
	switch {
	case errors.Is(err, store.ErrNoLive):
		return false, "No config version was applied to the store, so there is nothing to roll back to.", nil
	case errors.Is(err, store.ErrNoPrevious):
		return false, "Version " + ShortVersion(from) + " is the first one applied: there is nothing before it to roll back to.", nil
	case err != nil:
		return false, "", err
	case from == target:
		return false, msg, nil
	}
	return true, msg, nil
}
