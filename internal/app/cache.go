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

// fresh remembers successful lookups for freshness. Failures are never
// cached: a new token works at once, a bad one is always re-checked, and a
// store error reaches the caller (which fails closed).
type fresh[K comparable, V any] struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[K]freshEntry[V]
}

type freshEntry[V any] struct {
	v  V
	at time.Time
}

func newFresh[K comparable, V any](now func() time.Time) *fresh[K, V] {
	return &fresh[K, V]{now: now, entries: map[K]freshEntry[V]{}}
}

func (c *fresh[K, V]) get(key K, load func() (V, error)) (V, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < freshness {
		return e.v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if len(c.entries) > 100_000 {
		clear(c.entries) // bounded: a flood of distinct keys cannot grow it
	}
	c.entries[key] = freshEntry[V]{v, now}
	c.mu.Unlock()
	return v, nil
}

// tokenCache reuses token lookups, keyed by the token's hash.
type tokenCache struct {
	next   authenticator
	lookup *fresh[string, call.Principal]
}

func (c *tokenCache) Authenticate(ctx context.Context, token string) (call.Principal, error) {
	return c.lookup.get(identity.Hash(token), func() (call.Principal, error) {
		return c.next.Authenticate(ctx, token)
	})
}

// killCache wraps the store's kill-switch lookup.
type killCache struct {
	dispatch.Store
	lookup *fresh[[2]string, *dispatch.Kill]
}

func (c *killCache) Killed(ctx context.Context, tenant, agent string) (*dispatch.Kill, error) {
	return c.lookup.get([2]string{tenant, agent}, func() (*dispatch.Kill, error) {
		return c.Store.Killed(ctx, tenant, agent)
	})
}
