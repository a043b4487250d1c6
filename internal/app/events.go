package app

import (
	"context"
	"log/slog"

	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/store"
)

// Live propagation across replicas (docs/scale-out.md). A store shared by
// several processes (postgres) announces every change; propagate applies
// each at once: a kill or a revoked token drops the caches that would
// otherwise keep the old answer up to freshness, a config change reloads
// the live version, a call's change wakes the long polls waiting on it,
// and a kill or a call approved elsewhere (the CLI) runs the sweeps.
// The periodic re-reads stay as the safety net for a missed event.

// propagation is what events act on.
type propagation struct {
	d      *dispatch.Dispatcher
	kills  *killCache
	tokens *tokenCache
	reload *reloader
	sweep  chan<- struct{} // wakes the kill/approved sweeps (buffered, 1)
	log    *slog.Logger
}

// propagate runs until ctx ends; with a store without events it just waits.
func propagate(ctx context.Context, st store.Store, p propagation) {
	ev, ok := st.(store.Events)
	if !ok {
		<-ctx.Done()
		return
	}
	// Config reloads read the store: they run on a goroutine of their own
	// (one at a time, a request made meanwhile coalesced) so that a slow
	// or hung read cannot hold up the other events (kills, tokens).
	// It is waited for on return, so that it never reads a closed store.
	reload := make(chan struct{}, 1)
	reloaded := make(chan struct{})
	defer func() { <-reloaded }()
	go func() {
		defer close(reloaded)
		for {
			select {
			case <-ctx.Done():
				return
			case <-reload:
				p.reload.pollStore(ctx)
			}
		}
	}()
	pollStore := func() {
		select {
		case reload <- struct{}{}:
		default: // a reload is already due
		}
	}
	ev.Subscribe(ctx, func(e store.Event) {
		switch e.Kind {
		case store.EventCall:
			p.d.Wake(e.ID)
		case store.EventApproved:
			p.wakeSweep()
		case store.EventKill:
			p.kills.lookup.clear()
			p.wakeSweep()
		case store.EventToken:
			p.tokens.lookup.clear()
		case store.EventConfig:
			pollStore()
		case store.EventResync:
			p.log.Info("store events resumed; re-reading what is cached")
			p.kills.lookup.clear()
			p.tokens.lookup.clear()
			pollStore()
			p.wakeSweep()
		}
	})
}

func (p propagation) wakeSweep() {
	select {
	case p.sweep <- struct{}{}:
	default: // a sweep is already due
	}
}

// clear forgets every entry: the next lookups read the store.
func (c *fresh[K, V]) clear() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}
