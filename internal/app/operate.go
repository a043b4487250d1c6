package app

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/store"
)

// The operator's actions on the store — the kill switch and config
// rollback — each with its audit record. The CLI (`warden kill`, `revive`,
// `rollback`) and the web console (the agents page) both call these, so the
// two do exactly the same thing and leave the same trail; only the
// record's trigger says which channel it came through.

// KillChange sets or clears one kill switch.
type KillChange struct {
	Revive        bool
	Tenant, Agent string // "*" for every agent of the tenant; both "*" for everything
	By            string // who, kept with the switch (refusals say "killed by By") and in the record
	Reason        string // why (kill only; shown in every refusal)
	Channel       string // cli, web: the record's trigger is Channel:By
}

// Target names what the change stops or lets go again.
func (k KillChange) Target() string {
	switch {
	case k.Tenant == "*":
		return "everything"
	case k.Agent == "*":
		return "tenant " + k.Tenant
	}
	return k.Tenant + "/" + k.Agent
}

// SwitchKill applies k and audits it. It reports whether anything changed
// and a sentence saying what happened; a switch that was already in the
// asked state is not audited again. If the switch changed but its record
// could not be written, the error says so.
func SwitchKill(ctx context.Context, st store.Store, k KillChange) (changed bool, msg string, err error) {
	verb := "kill"
	if k.Revive {
		verb = "revive"
	}
	what := k.Target()
	rec := &audit.Record{Time: time.Now().UTC(), Kind: verb, Tenant: k.Tenant, Agent: k.Agent, Trigger: k.Channel + ":" + k.By}
	if k.Revive {
		was, err := st.Revive(ctx, k.Tenant, k.Agent)
		if err != nil {
			return false, "", err
		}
		if !was {
			return false, what + " was not killed", nil
		}
		rec.Reason = fmt.Sprintf("revived %s by %s", what, k.By)
	} else {
		set, err := st.Kill(ctx, k.Tenant, k.Agent, k.By, k.Reason)
		if err != nil {
			return false, "", err
		}
		if !set {
			return false, what + " was already killed", nil
		}
		rec.Reason = fmt.Sprintf("killed %s by %s", what, k.By)
		if k.Reason != "" {
			rec.Reason += ": " + k.Reason
		}
	}
	if err := st.Append(ctx, rec); err != nil {
		return true, "", fmt.Errorf("%s is done but could not be audited: %w", verb, err)
	}
	return true, rec.Reason, nil
}

// RollbackConfig makes the version live before the current one (to empty)
// or the version to names live again, and audits it. It returns the
// versions live before and after and a sentence for the operator; from ==
// target means target was already live, nothing changed and nothing was
// audited. Errors are the store's (store.ErrNoLive, ErrNoPrevious,
// ErrNotFound, ErrAmbiguous), or say the rollback is done but unaudited.
func RollbackConfig(ctx context.Context, st store.Store, to, by, channel string) (from, target, msg string, err error) {
	from, target, err = st.RollbackConfig(ctx, to, by)
	if err != nil {
		return from, target, "", err
	}
	if from == target {
		return from, target, fmt.Sprintf("version %s is already live", ShortVersion(target)), nil
	}
	reason := fmt.Sprintf("config rolled back from %s to %s by %s", ShortVersion(from), ShortVersion(target), by)
	rec := &audit.Record{Time: time.Now().UTC(), Kind: "config_rollback", Trigger: channel + ":" + by, Reason: reason, ConfigVersion: target}
	if err := st.Append(ctx, rec); err != nil {
		return from, target, "", fmt.Errorf("version %s is live but the rollback could not be audited: %w", ShortVersion(target), err)
	}
	return from, target, reason, nil
}

// ShortVersion is the 12-character form of a config version people read.
func ShortVersion(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}
