package app

import (
	"context"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/identity"
)

// freshness is how long a token lookup or a kill-switch read may be reused.
// It bounds how late a revocation or a kill takes effect (the contract says
// within a second) and saves two SQL round trips on nearly every call.
const freshness = 500 * time.Millisecond

// tokenCache remembers successful token lookups for freshness. Failures are
// never cached, so a new token works at once and a bad one is always
// re-checked.
type tokenCache struct {
	next authenticator
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]tokenEntry // by token hash
}

type tokenEntry struct {
	p  call.Principal
	at time.Time
}

func (c *tokenCache) Authenticate(ctx context.Context, token string) (call.Principal, error) {
	h := identity.Hash(token)
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[h]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < freshness {
		return e.p, nil
	}
	p, err := c.next.Authenticate(ctx, token)
	if err != nil {
		return p, err
	}
	c.mu.Lock()
	if len(c.entries) > 100_000 {
		clear(c.entries) // bounded: a flood of distinct tokens cannot grow it
	}
	c.entries[h] = tokenEntry{p, now}
	c.mu.Unlock()
	return p, nil
}

// killCache wraps the store's kill-switch lookup with a short-lived cache.
type killCache struct {
	dispatch.Store
	now func() time.Time

	mu      sync.Mutex
	entries map[[2]string]killEntry
}

type killEntry struct {
	k  *dispatch.Kill
	at time.Time
}

func (c *killCache) Killed(ctx context.Context, tenant, agent string) (*dispatch.Kill, error) {
	key := [2]string{tenant, agent}
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < freshness {
		return e.k, nil
	}
	k, err := c.Store.Killed(ctx, tenant, agent)
	if err != nil {
		return nil, err // fail closed: the dispatcher refuses the call
	}
	c.mu.Lock()
	if len(c.entries) > 100_000 {
		clear(c.entries)
	}
	c.entries[key] = killEntry{k, now}
	c.mu.Unlock()
	return k, nil
}
