// Package limit holds warden's rate limits and daily budgets as pure logic:
// token buckets for calls per minute (Limiter) and the arithmetic of a UTC
// day's budget (Budget, Usage, NextReset). Clocks are passed in.
//
// It does no I/O: where usage is stored (internal/store/...) and when a call
// is refused (internal/dispatch) live elsewhere. Buckets live in this
// process's memory only, so each replica of warden enforces a rate limit on
// its own; budgets are counted in the store and shared by every replica on
// it.
package limit

import (
	"fmt"
	"sync"
	"time"
)

// Window is the period a rate limit counts calls over.
const Window = time.Minute

// Want is one bucket a call must take a token from.
type Want struct {
	Key       string // what is limited, e.g. "t1/agent" or "t1/agent/github/create_pr"
	Name      string // how a refusal names it, e.g. "calls_per_minute"
	PerMinute int64  // capacity and refill per minute; 0 or less: no limit
}

// Refusal says which limit refused a call and when a token will be back.
type Refusal struct {
	Want       Want
	RetryAfter time.Duration
}

// bucket is a token bucket holding up to n tokens, refilled continuously
// at n per Window: a burst of n calls, then one every Window/n. It is kept
// in its virtual-scheduling form (GCRA) so that the arithmetic is exact
// integers: tat is when the bucket will be full again, and each call
// pushes it one interval later; a call is allowed while the bucket would
// then hold at most n intervals' worth of debt.
type bucket struct {
	n   int64
	tat time.Time // theoretical arrival time: the bucket is full from then on
}

// interval is the time one token takes to refill; at least 1ns, whatever
// the limit.
func interval(n int64) time.Duration { return max(1, Window/time.Duration(n)) }

// resize keeps the calls counted against the old limit (tat − now, in old
// intervals) when the limit changes with a new config version.
func (b *bucket) resize(now time.Time, n int64) {
	if n == b.n {
		return
	}
	if debt := b.tat.Sub(now); debt > 0 {
		used := (debt + interval(b.n) - 1) / interval(b.n)
		b.tat = now.Add(used * interval(n))
	}
	b.n = n
}

// wait is how long until the bucket has a token for a call at now; 0: it
// has one now.
func (b *bucket) wait(now time.Time) time.Duration {
	tat := b.tat
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval(b.n))
	if over := next.Sub(now) - time.Duration(b.n)*interval(b.n); over > 0 {
		return over
	}
	return 0
}

// take takes a token; wait(now) must be 0.
func (b *bucket) take(now time.Time) {
	if b.tat.Before(now) {
		b.tat = now
	}
	b.tat = b.tat.Add(interval(b.n))
}

// Limiter is a set of token buckets by key. It is safe for concurrent use.
type Limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	takes   int
}

// NewLimiter returns an empty limiter: every bucket starts full.
func NewLimiter() *Limiter { return &Limiter{buckets: map[string]*bucket{}} }

// sweepEvery is how many takes pass between sweeps of full buckets, which
// bounds memory to the buckets used within about a minute.
const sweepEvery = 1024

// Take takes one token from every wanted bucket, or from none: when one of
// them is empty it returns the refusal of the one that waits longest and
// leaves the others untouched, so a call refused by one limit does not
// count against another.
func (l *Limiter) Take(now time.Time, wants ...Want) *Refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.takes++
	if l.takes%sweepEvery == 0 {
		l.sweep(now)
	}
	var ref *Refusal
	bs := make([]*bucket, 0, len(wants))
	for _, w := range wants {
		if w.PerMinute <= 0 {
			continue
		}
		b := l.buckets[w.Key]
		if b == nil {
			b = &bucket{n: w.PerMinute, tat: now}
			l.buckets[w.Key] = b
		}
		b.resize(now, w.PerMinute)
		if wait := b.wait(now); wait > 0 && (ref == nil || wait > ref.RetryAfter) {
			ref = &Refusal{Want: w, RetryAfter: wait}
		}
		bs = append(bs, b)
	}
	if ref != nil {
		return ref
	}
	for _, b := range bs {
		b.take(now)
	}
	return nil
}

// sweep forgets buckets that have refilled: a full bucket and a missing
// one behave the same.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if !b.tat.After(now) {
			delete(l.buckets, k)
		}
	}
}

// Len is how many buckets are held (tests).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Budget is an agent's daily allowance; zero fields are no cap.
type Budget struct {
	TokensPerDay int64
	USDPerDay    float64
}

// Capped reports whether b caps anything.
func (b Budget) Capped() bool { return b.TokensPerDay > 0 || b.USDPerDay > 0 }

// Usage is what an agent used in one UTC day.
type Usage struct {
	Tokens  int64
	CostUSD float64
}

// Exhausted says which budget u has used up, if any: a call is refused once
// the day's usage has reached the budget. Usage is reported after the fact,
// so the calls in flight when it is reached may take it past the budget.
func (b Budget) Exhausted(u Usage) (string, bool) {
	switch {
	case b.TokensPerDay > 0 && u.Tokens >= b.TokensPerDay:
		return fmt.Sprintf("tokens_per_day: %d of %d tokens used", u.Tokens, b.TokensPerDay), true
	case b.USDPerDay > 0 && u.CostUSD >= b.USDPerDay:
		return fmt.Sprintf("usd_per_day: $%.4f of $%.2f used", u.CostUSD, b.USDPerDay), true
	}
	return "", false
}

// Day is the UTC day t falls in, as YYYY-MM-DD: the key usage is counted
// under.
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// NextReset is the next UTC midnight after t, when a day's budget resets.
func NextReset(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}
