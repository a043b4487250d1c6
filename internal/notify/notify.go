// Package notify tells humans that a call waits for them: it posts new
// approval requests to Slack (chat.postMessage with Approve/Deny buttons)
// and to generic webhooks (JSON signed with HMAC-SHA256), and holds what
// Slack's interactivity callback needs: the request signature check, the
// replay guard, the payload parser and the message update.
//
// Delivery is asynchronous and best-effort: the dispatcher hands a request
// to Notifier.Pending, which queues it without blocking; workers deliver
// with retries and backoff. A notifier that cannot deliver is logged and
// counted (Stats), never a reason to fail or slow the call. Deciding is not
// here: the Slack callback in internal/server votes through the
// dispatcher, like the API.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-dev/warden/internal/dispatch"
)

// Sink delivers one approval request to one destination.
type Sink interface {
	// Name identifies the sink in logs and stats: "slack", "webhook:HOST".
	Name() string
	Send(ctx context.Context, v dispatch.ApprovalView) error
}

// Permanent marks a delivery error retrying cannot fix (a 4xx, Slack's
// invalid_auth or channel_not_found).
type Permanent struct{ Err error }

func (e *Permanent) Error() string { return e.Err.Error() }
func (e *Permanent) Unwrap() error { return e.Err }

// RetryAfter is a delivery error that says when to try again (HTTP 429).
type RetryAfter struct {
	Err   error
	After time.Duration
}

func (e *RetryAfter) Error() string { return e.Err.Error() }
func (e *RetryAfter) Unwrap() error { return e.Err }

// Options configure a Notifier.
type Options struct {
	Logger      *slog.Logger
	QueueSize   int           // per sink; default 256. A full queue drops (and counts) the newest request
	Attempts    int           // per request and sink; default 5
	Backoff     time.Duration // first retry delay, doubled each time; default 500ms
	MaxBackoff  time.Duration // default 30s
	SendTimeout time.Duration // one attempt; default 10s
}

// Stats counts one sink's deliveries since start.
type Stats struct {
	Sent      int64  `json:"sent"`
	Failed    int64  `json:"failed"`  // gave up after every attempt (or a permanent error)
	Dropped   int64  `json:"dropped"` // the queue was full
	Retries   int64  `json:"retries"`
	LastError string `json:"last_error,omitempty"`
}

// Notifier fans approval requests out to its sinks, each through its own
// bounded queue and worker. Pending never blocks. Run owns the workers.
type Notifier struct {
	o      Options
	log    *slog.Logger
	queues []*queue
}

type queue struct {
	sink                           Sink
	ch                             chan dispatch.ApprovalView
	sent, failed, dropped, retries atomic.Int64
	mu                             sync.Mutex
	lastErr                        string
}

// New returns a notifier for sinks; it delivers once Run is running.
func New(o Options, sinks ...Sink) *Notifier {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 10 * time.Second
	}
	n := &Notifier{o: o, log: o.Logger}
	for _, s := range sinks {
		n.queues = append(n.queues, &queue{sink: s, ch: make(chan dispatch.ApprovalView, o.QueueSize)})
	}
	return n
}

var _ dispatch.Notifier = (*Notifier)(nil)

// Pending queues v for every sink without blocking. A nil Notifier
// does nothing.
func (n *Notifier) Pending(v dispatch.ApprovalView) {
	if n == nil {
		return
	}
	for _, q := range n.queues {
		select {
		case q.ch <- v:
		default:
			q.dropped.Add(1)
			q.setErr("queue full")
			n.log.Error("approval notification dropped: queue full", "sink", q.sink.Name(), "approval", v.ID, "queue_size", cap(q.ch))
		}
	}
}

// Run delivers until ctx ends; requests still queued then are logged as
// undelivered. A nil Notifier returns at once.
func (n *Notifier) Run(ctx context.Context) {
	if n == nil {
		return
	}
	var wg sync.WaitGroup
	for _, q := range n.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.work(ctx, q)
		}()
	}
	wg.Wait()
	for _, q := range n.queues {
		if l := len(q.ch); l > 0 {
			n.log.Warn("approval notifications not delivered at shutdown", "sink", q.sink.Name(), "count", l)
		}
	}
}

func (n *Notifier) work(ctx context.Context, q *queue) {
	for {
		select {
		case <-ctx.Done():
			return
		case v := <-q.ch:
			n.deliver(ctx, q, v)
		}
	}
}

func (n *Notifier) deliver(ctx context.Context, q *queue, v dispatch.ApprovalView) {
	delay := n.o.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, n.o.SendTimeout)
		err = q.sink.Send(sctx, v)
		cancel()
		if err == nil {
			q.sent.Add(1)
			n.log.Debug("approval notification sent", "sink", q.sink.Name(), "approval", v.ID, "attempt", attempt)
			return
		}
		var perm *Permanent
		if errors.As(err, &perm) || attempt >= n.o.Attempts || ctx.Err() != nil {
			break
		}
		wait := delay
		var ra *RetryAfter
		if errors.As(err, &ra) && ra.After > wait {
			wait = ra.After
		}
		wait = min(wait, n.o.MaxBackoff)
		q.retries.Add(1)
		n.log.Warn("approval notification failed; retrying", "sink", q.sink.Name(), "approval", v.ID, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		delay = min(delay*2, n.o.MaxBackoff)
	}
	q.failed.Add(1)
	q.setErr(err.Error())
	n.log.Error("approval notification failed; giving up", "sink", q.sink.Name(), "approval", v.ID, "err", err)
}

func (q *queue) setErr(s string) {
	q.mu.Lock()
	q.lastErr = s
	q.mu.Unlock()
}

// Stats returns each sink's counters, by sink name.
func (n *Notifier) Stats() map[string]Stats {
	out := make(map[string]Stats, len(n.queues))
	for i, q := range n.queues {
		q.mu.Lock()
		s := Stats{Sent: q.sent.Load(), Failed: q.failed.Load(), Dropped: q.dropped.Load(), Retries: q.retries.Load(), LastError: q.lastErr}
		q.mu.Unlock()
		name := q.sink.Name()
		if _, dup := out[name]; dup {
			name += "#" + strconv.Itoa(i)
		}
		out[name] = s
	}
	return out
}

// statusError is a non-2xx answer: permanent for 4xx but 408 and 429.
func statusError(what string, code int, retryAfter string) error {
	err := fmt.Errorf("%s: HTTP %d", what, code)
	switch {
	case code == 429:
		after, _ := strconv.Atoi(retryAfter)
		return &RetryAfter{Err: err, After: time.Duration(after) * time.Second}
	case code >= 400 && code < 500 && code != 408:
		return &Permanent{Err: err}
	}
	return err
}
