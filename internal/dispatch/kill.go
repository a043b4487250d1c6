package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
)

// ApprovalCancelled is the Observer.ApprovalResolved result of an approval
// request cancelled because a kill switch stopped its agent.
const ApprovalCancelled = "cancelled"

// KilledCall is a pending call and the kill switch entry that stops its agent.
type KilledCall struct {
	State *State
	Kill  Kill
}

// KilledPendingStore is an optional capability of the ApprovalStore: it
// finds the pending calls whose agents a kill switch stops. Without it,
// CancelKilled does nothing (the approval after a kill still does not run
// the call: claimAndRun checks the switch).
type KilledPendingStore interface {
	KilledPending(ctx context.Context, limit int) ([]KilledCall, error)
}

// CancelKilled refuses the pending calls of killed agents: each moves
// pending → refused with an outcome record whose reason names who killed
// the agent and when, and its long polls return. Like ExpireDue it is a
// conditional commit from pending, so several servers sweeping the same
// store, or a vote or an expiry racing the sweep, change each call once.
// The server runs it every second. It returns how many it cancelled.
func (d *Dispatcher) CancelKilled(ctx context.Context) (int, error) {
	ks, ok := d.approvals.(KilledPendingStore)
	if !ok {
		return 0, nil
	}
	due, err := ks.KilledPending(ctx, 100)
	if err != nil {
		return 0, err
	}
	kills := make(map[string]Kill, len(due))
	sts := make([]*State, len(due))
	for i, kc := range due {
		sts[i], kills[kc.State.ID] = kc.State, kc.Kill
	}
	now := d.now().UTC()
	return d.close(ctx, sts, now, func(st *State) *audit.Record {
		k := kills[st.ID]
		st.Status = StatusRefused
		st.Decision = call.Deny
		st.Rules = []string{RuleKillSwitch}
		st.Reason = fmt.Sprintf("denied: killed by %s at %s while waiting for approval", k.By, k.At.UTC().Format(time.RFC3339))
		if k.Why != "" {
			st.Reason += ": " + k.Why
		}
		rec := d.record(st, audit.KindOutcome, st.Trigger)
		rec.Outcome = audit.OutcomeRefused
		return rec
	}, func(st *State) {
		d.resolved(ctx, st, ApprovalCancelled, now)
		d.finished(st, 0)
	})
}

// StopKilled cancels the executions in progress of agents a kill switch now
// stops; each records a failed outcome saying so. It returns how many it
// stopped. The server runs it with CancelKilled.
func (d *Dispatcher) StopKilled(ctx context.Context) (int, error) {
	d.mu.Lock()
	running := make([]*execution, 0, len(d.inflight))
	for _, e := range d.inflight {
		running = append(running, e)
	}
	d.mu.Unlock()
	n := 0
	for _, e := range running {
		k, err := d.store.Killed(ctx, e.tenant, e.agent)
		if err != nil {
			return n, err
		}
		if k != nil {
			e.cancel(errKilled)
			n++
		}
	}
	return n, nil
}
