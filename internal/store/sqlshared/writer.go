// Package sqlshared is the code the SQL store backends (store/sqlite and
// store/postgres) share where their logic is the same: the audit writer's
// group-commit queue and the sealing of a batch, the audit filter query,
// decoding rows into warden's values, and the migration files. What
// differs stays in each backend: the SQL dialect, the driver calls,
// transactions and locking. It imports neither database/sql nor a driver;
// T is a backend's transaction type (*sql.Tx, pgx.Tx).
package sqlshared

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/store"
)

// TimeColumn is the format of the audit and call tables' time text
// columns: UTC with a fixed nine fractional digits, so that comparing the
// text compares the times.
const TimeColumn = "2006-01-02T15:04:05.000000000Z"

// States of a pending append. The writer claims a request before touching
// its record; Append gives up on one only if it can still abandon it, so a
// record is never written after its Append returned, nor read by the writer
// after its caller got it back.
const (
	stateQueued int32 = iota
	stateClaimed
	stateAbandoned
)

// Pending is one append waiting for its commit.
type Pending[T any] struct {
	Rec    *audit.Record
	Apply  func(context.Context, T) error // optional, see Writer.Enqueue
	Stmt   *Stmt                          // optional, Apply as one statement, see Writer.EnqueueStmt
	Notify []string                       // event payloads sent with the commit (postgres)
	state  atomic.Int32
	done   chan error // buffered: the writer never blocks on a reply
}

// Stmt is an apply function spelled out as the one SQL statement it runs,
// so that a backend may send the statements of a batch together (pipelined)
// instead of calling each Apply in turn. Running Stmt must do exactly what
// its Pending's Apply does.
type Stmt struct {
	SQL  string
	Args []any
	// NoRows, if not nil, is the refusal when the statement affects no row
	// (what the Apply returns through Skip then): the record is left out
	// and its caller gets NoRows.
	NoRows error
}

// skipped marks an apply error as an expected refusal (a conflict, say):
// the record is left out and its caller gets the error, without a log line.
type skipped struct{ err error }

func (e *skipped) Error() string { return e.err.Error() }
func (e *skipped) Unwrap() error { return e.err }

// Skip wraps err, returned by an apply function given to Enqueue, to say
// that the record should quietly not be written and err returned as is.
func Skip(err error) error { return &skipped{err} }

// Writer is the audit writer's queue: appends wait in it for the writer
// goroutine, which takes every one waiting, commits them together through
// the backend's commit function and answers them all.
type Writer[T any] struct {
	Logger          *slog.Logger
	Signer          *audit.Signer // nil: no checkpoints
	CheckpointEvery int64

	// mu guards closed and sending on queue: Enqueue sends under the read
	// lock, Close closes the queue under the write lock, so nothing is ever
	// sent on a closed queue or left in it unanswered.
	mu     sync.RWMutex
	closed bool
	queue  chan *Pending[T]
	depth  atomic.Int64  // appends not yet answered
	done   chan struct{} // closed when the writer goroutine has returned
}

// NewWriter returns a writer whose queue holds queueSize appends.
func NewWriter[T any](logger *slog.Logger, signer *audit.Signer, checkpointEvery, queueSize int) *Writer[T] {
	return &Writer[T]{
		Logger: logger, Signer: signer, CheckpointEvery: int64(checkpointEvery),
		queue: make(chan *Pending[T], queueSize),
		done:  make(chan struct{}),
	}
}

// Start runs the writer goroutine: it takes up to maxBatch appends waiting
// in the queue, claims the ones still wanted, passes them to commit, which
// must answer each (Reply), then calls between (if not nil), and repeats
// until Close.
func (w *Writer[T]) Start(maxBatch int, commit func([]*Pending[T]), between func()) {
	go func() {
		defer close(w.done)
		batch := make([]*Pending[T], 0, min(cap(w.queue), maxBatch))
		for {
			p, ok := <-w.queue
			if !ok {
				return
			}
			batch = append(batch[:0], p)
		drain:
			for len(batch) < cap(batch) {
				select {
				case p, ok := <-w.queue:
					if !ok {
						break drain
					}
					batch = append(batch, p)
				default:
					break drain
				}
			}
			claimed := batch[:0]
			for _, p := range batch {
				// An abandoned request's Enqueue has returned (and uncounted it).
				if p.state.CompareAndSwap(stateQueued, stateClaimed) {
					claimed = append(claimed, p)
				}
			}
			if len(claimed) > 0 {
				commit(claimed)
				if between != nil {
					between()
				}
			}
			clear(batch[:cap(batch)]) // let answered records be collected
		}
	}()
}

// Queued is how many appends wait in the queue (not yet taken).
func (w *Writer[T]) Queued() int { return len(w.queue) }

// Depth returns how many appends are waiting for their commit: queued for
// the writer or in the batch it is committing.
func (w *Writer[T]) Depth() int { return int(w.depth.Load()) }

// Close makes later appends fail with store.ErrClosed and waits for the
// writer to have answered every append accepted.
func (w *Writer[T]) Close() {
	w.mu.Lock()
	w.closed = true
	close(w.queue)
	w.mu.Unlock()
	<-w.done
}

func prepare(r *audit.Record) error {
	if r == nil {
		return errors.New("audit append: nil record")
	}
	if r.ID == "" {
		r.ID = audit.NewID()
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	return nil
}

// Enqueue appends r through the writer and returns once it is committed
// (or failed): r.ID and r.Time are filled in first if empty. apply, if not
// nil, runs in the transaction that writes r, in a savepoint just before
// r is sealed, for state that must change if and only if the record is
// written (a call's status, say): if it fails, whatever it did is rolled
// back, r is not written, its caller gets the error (unwrapped if it came
// through Skip) and the other records of the batch go ahead. apply runs on
// the writer goroutine, with the writer's context; it must only touch the
// database through its transaction and must not block on anything else.
// notify is handed to the backend with the record (Pending.Notify).
//
// If ctx ends while r is still queued, Enqueue returns ctx's error and r
// is never written. Once the writer has taken r, Enqueue waits for the
// commit, whatever ctx does, so that its answer is always true.
func (w *Writer[T]) Enqueue(ctx context.Context, r *audit.Record, apply func(context.Context, T) error, notify []string) error {
	return w.EnqueueStmt(ctx, r, apply, nil, notify)
}

// EnqueueStmt is Enqueue with apply also given as the one statement it
// runs (Pending.Stmt), for a backend that pipelines state changes; apply
// must be given too, for the backends and batches that call it instead.
func (w *Writer[T]) EnqueueStmt(ctx context.Context, r *audit.Record, apply func(context.Context, T) error, stmt *Stmt, notify []string) error {
	if stmt != nil && apply == nil {
		return errors.New("audit append: a statement without its apply function")
	}
	if err := prepare(r); err != nil {
		return err
	}
	p := &Pending[T]{Rec: r, Apply: apply, Stmt: stmt, Notify: notify, done: make(chan error, 1)}

	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return fmt.Errorf("audit append: %w", store.ErrClosed)
	}
	w.depth.Add(1)
	select {
	case w.queue <- p:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		w.depth.Add(-1)
		return fmt.Errorf("audit append: %w", ctx.Err())
	}

	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		if p.state.CompareAndSwap(stateQueued, stateAbandoned) {
			w.depth.Add(-1)
			return fmt.Errorf("audit append: %w", ctx.Err())
		}
		return <-p.done
	}
}

// Unqueued appends r by calling commit with it alone on the caller's
// goroutine, bypassing the queue (but not Close).
func (w *Writer[T]) Unqueued(r *audit.Record, commit func([]*Pending[T])) error {
	if err := prepare(r); err != nil {
		return err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return fmt.Errorf("audit append: %w", store.ErrClosed)
	}
	p := &Pending[T]{Rec: r, done: make(chan error, 1)}
	p.state.Store(stateClaimed)
	w.depth.Add(1)
	commit([]*Pending[T]{p})
	return <-p.done
}

// Reply answers the append waiting on p.
func (w *Writer[T]) Reply(p *Pending[T], err error) {
	if err != nil {
		// Nothing was committed: the record is not in the chain.
		p.Rec.Seq, p.Rec.PrevHash, p.Rec.Hash = 0, "", ""
	}
	w.depth.Add(-1) // before the reply, so that a returned append is not counted
	p.done <- err
}

// ReplyAll answers every append of ps with err, logging a failure as msg.
func (w *Writer[T]) ReplyAll(ps []*Pending[T], err error, msg string) {
	if err != nil {
		w.Logger.Error(msg, "records", len(ps), "err", err)
	}
	for _, p := range ps {
		w.Reply(p, err)
	}
}

// Batch is what Seal needs of one backend transaction.
type Batch[T any] struct {
	Tx T
	// Exec runs a statement without arguments in Tx (the savepoints).
	Exec func(ctx context.Context, stmt string) error
	// Insert writes a sealed record with its body.
	Insert func(ctx context.Context, r *audit.Record, body []byte) error
	// Checkpoint signs the chain at seq, hash and writes the checkpoint.
	Checkpoint func(ctx context.Context, seq int64, hash string) error
}

// Seal seals and inserts each of ps in turn after the chain's head (seq,
// hash), running its Apply first, and adds a checkpoint whenever
// CheckpointEvery records follow lastCheckpoint (with a Signer). It
// answers the records it refuses itself (one that cannot be encoded, or
// whose Apply failed) and returns the others, in order: on error the ones
// written and the ones not yet tried, which the caller answers with err;
// otherwise the ones written, which the caller commits.
func (w *Writer[T]) Seal(ctx context.Context, b Batch[T], ps []*Pending[T], seq int64, hash string, lastCheckpoint int64) (written []*Pending[T], err error) {
	written = make([]*Pending[T], 0, len(ps))
	for i, p := range ps {
		r := p.Rec
		var body []byte
		if p.Apply == nil {
			body, err = r.SealCanonical(hash, seq+1)
			if err != nil {
				w.Reply(p, fmt.Errorf("audit append: %w", err))
				continue
			}
		} else {
			var refused error
			body, refused, err = w.applyAndSeal(ctx, b, p, hash, seq+1)
			if err != nil {
				return append(written, ps[i:]...), err
			}
			if refused != nil {
				w.Reply(p, refused)
				continue
			}
		}
		if err := b.Insert(ctx, r, body); err != nil {
			return append(written, ps[i:]...), fmt.Errorf("audit append: insert seq %d: %w", r.Seq, err)
		}
		written = append(written, p)
		seq, hash = r.Seq, r.Hash
		if w.Signer != nil && seq-lastCheckpoint >= w.CheckpointEvery {
			if err := b.Checkpoint(ctx, seq, hash); err != nil {
				return append(written, ps[i+1:]...), fmt.Errorf("audit append: %w", err)
			}
			lastCheckpoint = seq
		}
	}
	return written, nil
}

// applyAndSeal runs p.Apply and seals p.Rec inside a savepoint, so that if
// either fails nothing of p remains in the transaction. refused is p's own
// failure; err is one that breaks the whole transaction.
func (w *Writer[T]) applyAndSeal(ctx context.Context, b Batch[T], p *Pending[T], prevHash string, seq int64) (body []byte, refused, err error) {
	if err := b.Exec(ctx, "SAVEPOINT audit_apply"); err != nil {
		return nil, nil, fmt.Errorf("audit append: savepoint: %w", err)
	}
	if aerr := p.Apply(ctx, b.Tx); aerr != nil {
		var sk *skipped
		if errors.As(aerr, &sk) {
			refused = sk.err
		} else {
			w.Logger.Warn("audit append: state change failed; record not written", "call_id", p.Rec.CallID, "err", aerr)
			refused = fmt.Errorf("audit append: %w", aerr)
		}
	} else if body, err = p.Rec.SealCanonical(prevHash, seq); err != nil {
		refused = fmt.Errorf("audit append: %w", err)
	}
	if refused != nil {
		if err := b.Exec(ctx, "ROLLBACK TO SAVEPOINT audit_apply"); err != nil {
			return nil, nil, fmt.Errorf("audit append: rollback to savepoint: %w", err)
		}
	}
	if err := b.Exec(ctx, "RELEASE SAVEPOINT audit_apply"); err != nil {
		return nil, nil, fmt.Errorf("audit append: release savepoint: %w", err)
	}
	return body, refused, nil
}

// NewCheckpoint signs the chain at seq, hash now and returns the values of
// its audit_checkpoints row (seq, hash, time, key_id, signature).
func NewCheckpoint(s *audit.Signer, seq int64, hash string) []any {
	cp := s.Sign(seq, hash, time.Now())
	return []any{cp.Seq, cp.Hash, cp.Time.Format(time.RFC3339Nano), cp.KeyID, cp.Signature}
}
