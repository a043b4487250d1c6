package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-dev/warden/internal/store"
)

// Subscribe listens on Channel with a connection of its own and calls fn
// with each event any replica (this one included) commits, until ctx
// ends, and then returns. When the connection breaks (the database
// restarted) it reconnects with backoff and then calls fn with
// EventResync, since events sent meanwhile are lost: the caller re-reads
// what it caches. fn runs on Subscribe's goroutine.
func (s *Store) Subscribe(ctx context.Context, fn func(store.Event)) {
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, s.connConfig.Copy())
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+Channel)
		}
		if err != nil {
			if conn != nil {
				conn.Close(context.Background()) //nolint:errcheck // broken anyway
			}
			if ctx.Err() == nil {
				s.logger.Warn("postgres: cannot listen for events; retrying", "err", err, "in", backoff)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
			first = false
			continue
		}
		backoff = 100 * time.Millisecond
		if !first {
			fn(store.Event{Kind: store.EventResync})
		}
		first = false
		for {
			// A bounded wait: a connection that died without a word (a
			// network partition) is noticed and replaced within a minute.
			// A quiet minute is not a lost connection: it is pinged, and
			// kept (with no resync) when it answers.
			wctx, cancel := context.WithTimeout(ctx, listenIdle)
			n, err := conn.WaitForNotification(wctx)
			idle := err != nil && wctx.Err() != nil && ctx.Err() == nil
			cancel()
			if idle {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err = conn.Ping(pctx)
				cancel()
				if err == nil {
					continue
				}
			}
			if err != nil {
				break
			}
			fn(parseEvent(n.Payload))
		}
		conn.Close(context.Background()) //nolint:errcheck // reconnecting
		if ctx.Err() == nil {
			s.logger.Warn("postgres: event connection lost; reconnecting")
		}
	}
}

// listenIdle is how long the listening connection waits for an event
// before it checks the connection is still there.
var listenIdle = time.Minute

// parseEvent reads a payload: "kind" or "kind:id".
func parseEvent(payload string) store.Event {
	kind, id, _ := strings.Cut(payload, ":")
	return store.Event{Kind: kind, ID: id}
}
