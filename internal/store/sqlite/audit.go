package sqlite

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/store"
)

// The dispatcher's audit sink is any type with this method; the Store is one.
var _ interface {
	Append(ctx context.Context, r *audit.Record) error
} = (*Store)(nil)

// timeColumn is the format of audit_records.time: UTC with a fixed nine
// fractional digits, so that comparing the text compares the times.
const timeColumn = "2006-01-02T15:04:05.000000000Z"

// States of a pending append. The writer claims a request before touching
// its record; Append gives up on one only if it can still abandon it, so a
// record is never written after its Append returned, nor read by the writer
// after its caller got it back.
const (
	stateQueued int32 = iota
	stateClaimed
	stateAbandoned
)

type pending struct {
	rec   *audit.Record
	apply func(context.Context, *sql.Tx) error // optional, see appendWith
	state atomic.Int32
	done  chan error // buffered: the writer never blocks on a reply
}

// skipped marks an apply error as an expected refusal (a conflict, say):
// the record is left out and its caller gets the error, without a log line.
type skipped struct{ err error }

func (e *skipped) Error() string { return e.err.Error() }
func (e *skipped) Unwrap() error { return e.err }

// skip wraps err, returned by an apply function given to appendWith, to say
// that the record should quietly not be written and err returned as is.
func skip(err error) error { return &skipped{err} }

// reply answers the Append waiting on p.
func (s *Store) reply(p *pending, err error) {
	if err != nil {
		// Nothing was committed: the record is not in the chain.
		p.rec.Seq, p.rec.PrevHash, p.rec.Hash = 0, "", ""
	}
	s.depth.Add(-1) // before the reply, so that a returned Append is not counted
	p.done <- err
}

// Append adds r to the audit trail and returns once it is durable: it is
// committed, with every other record pending at the time, in one transaction
// and fsync. On success r.Seq, r.PrevHash and r.Hash are set; r.ID and r.Time
// are filled in first if empty. On error r is not in the trail.
//
// If ctx ends while r is still queued, Append returns ctx's error and r is
// never written. Once the writer has taken r, Append waits for the commit,
// whatever ctx does, so that its answer is always true.
func (s *Store) Append(ctx context.Context, r *audit.Record) error {
	return s.appendWith(ctx, r, nil)
}

// appendWith is Append that also runs apply in the transaction that writes
// r, for state that must change if and only if the record is written (a
// call's status, say). apply runs on the writer goroutine, with the writer's
// context, in a savepoint just before r is sealed: if it fails, whatever it
// did is rolled back, r is not written, its caller gets the error (unwrapped
// if it came through skip) and the other records of the batch go ahead.
// apply must only touch the database through tx and must not block on
// anything else.
func (s *Store) appendWith(ctx context.Context, r *audit.Record, apply func(context.Context, *sql.Tx) error) error {
	if err := prepare(r); err != nil {
		return err
	}
	p := &pending{rec: r, apply: apply, done: make(chan error, 1)}

	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("audit append: %w", ErrClosed)
	}
	s.depth.Add(1)
	select {
	case s.queue <- p:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		s.depth.Add(-1)
		return fmt.Errorf("audit append: %w", ctx.Err())
	}

	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		if p.state.CompareAndSwap(stateQueued, stateAbandoned) {
			s.depth.Add(-1)
			return fmt.Errorf("audit append: %w", ctx.Err())
		}
		return <-p.done
	}
}

// AppendUnbatched is Append without group commit: one transaction, and one
// fsync, per record, on the caller's goroutine. It exists as the baseline
// for bench/auditbench; use Append.
func (s *Store) AppendUnbatched(ctx context.Context, r *audit.Record) error {
	if err := prepare(r); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("audit append: %w", ErrClosed)
	}
	s.unbatched.Lock()
	defer s.unbatched.Unlock()
	p := &pending{rec: r, done: make(chan error, 1)}
	p.state.Store(stateClaimed)
	s.depth.Add(1)
	s.commit(ctx, []*pending{p})
	return <-p.done
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

// QueueDepth returns how many appends are waiting for their commit: queued
// for the writer or in the batch it is committing.
func (s *Store) QueueDepth() int { return int(s.depth.Load()) }

// Head returns the seq and hash of the last record this Store committed, or
// found when it opened. Another process may have appended since.
func (s *Store) Head() (seq int64, hash string) {
	s.headMu.Lock()
	defer s.headMu.Unlock()
	return s.headSeq, s.headHash
}

// write is the audit writer goroutine. It takes every append waiting in the
// queue, commits them together, answers them all, and repeats until Close
// closes the queue; it then returns, having answered everything queued.
func (s *Store) write() {
	defer close(s.writerDone)
	batch := make([]*pending, 0, cap(s.queue))
	for {
		p, ok := <-s.queue
		if !ok {
			return
		}
		batch = append(batch[:0], p)
	drain:
		for len(batch) < cap(s.queue) {
			select {
			case p, ok := <-s.queue:
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
			// An abandoned request's Append has returned (and uncounted it).
			if p.state.CompareAndSwap(stateQueued, stateClaimed) {
				claimed = append(claimed, p)
			}
		}
		if len(claimed) == 0 {
			continue
		}
		// No deadline: waiting for the write lock is bounded by the busy
		// timeout, and an fsync cannot be interrupted anyway. (A context
		// that can end also costs the driver a goroutine per statement.)
		s.commit(context.Background(), claimed)
		clear(batch[:cap(batch)]) // let answered records be collected
		if len(s.queue) > 0 && s.othersWaiting() {
			// Back-to-back commits hold SQLite's write lock almost without
			// a gap, and another process (warden kill, apply, approvals
			// approve) polling for it in its busy handler would starve.
			// It has announced itself (Announce): leave it a window; the
			// records arriving meanwhile join the next batch.
			time.Sleep(commitGap)
		}
	}
}

// commitGap is the pause between back-to-back group commits while another
// process waits for the write lock.
const commitGap = 2 * time.Millisecond

// commit writes ps in one transaction and answers each of them. A record
// that cannot be encoded fails alone; any other failure fails them all, and
// none of them is visible.
func (s *Store) commit(ctx context.Context, ps []*pending) {
	written, err := s.insert(ctx, ps)
	if err != nil {
		s.logger.Error("audit commit failed", "records", len(written), "err", err)
		for _, p := range written {
			s.reply(p, err)
		}
		return
	}
	if len(written) == 0 {
		return
	}
	last := written[len(written)-1].rec
	s.headMu.Lock()
	s.headSeq, s.headHash = last.Seq, last.Hash
	s.headMu.Unlock()
	for _, p := range written {
		s.reply(p, nil)
	}
}

// insert runs the transaction for commit. It answers the records it refuses
// itself and returns the others, which the caller answers with err.
func (s *Store) insert(ctx context.Context, ps []*pending) (written []*pending, err error) {
	written = make([]*pending, 0, len(ps))
	// Until the transaction commits, every record not refused is pending on
	// err; on an early return the ones not yet tried are too.
	fail := func(e error, rest []*pending) ([]*pending, error) {
		return append(written, rest...), e
	}

	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock now
	if err != nil {
		return fail(fmt.Errorf("audit append: begin: %w", err), ps)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	// Another process may have appended since we last did: the head is
	// whatever the table says now that we hold the write lock.
	seq, hash, err := readHead(ctx, tx)
	if err != nil {
		return fail(fmt.Errorf("audit append: %w", err), ps)
	}
	var lastCheckpoint int64
	if s.signer != nil {
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints").Scan(&lastCheckpoint); err != nil {
			return fail(fmt.Errorf("audit append: last checkpoint: %w", err), ps)
		}
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO audit_records
		(seq, id, time, tenant, agent, decision, kind, call_id, body, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fail(fmt.Errorf("audit append: %w", err), ps)
	}
	defer ins.Close()

	for i, p := range ps {
		r := p.rec
		var body []byte
		if p.apply == nil {
			body, err = r.SealCanonical(hash, seq+1)
			if err != nil {
				s.reply(p, fmt.Errorf("audit append: %w", err))
				continue
			}
		} else {
			var refused error
			body, refused, err = s.applyAndSeal(ctx, tx, p, hash, seq+1)
			if err != nil {
				return fail(err, ps[i:])
			}
			if refused != nil {
				s.reply(p, refused)
				continue
			}
		}
		if _, err := ins.ExecContext(ctx, r.Seq, r.ID, r.Time.UTC().Format(timeColumn),
			r.Tenant, r.Agent, r.Decision, r.Kind, r.CallID, string(body), r.Hash); err != nil {
			return fail(fmt.Errorf("audit append: insert seq %d: %w", r.Seq, err), ps[i:])
		}
		written = append(written, p)
		seq, hash = r.Seq, r.Hash
		if s.signer != nil && seq-lastCheckpoint >= s.checkpointEvery {
			cp := s.signer.Sign(seq, hash, time.Now())
			if _, err := tx.ExecContext(ctx,
				"INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)",
				cp.Seq, cp.Hash, cp.Time.Format(time.RFC3339Nano), cp.KeyID, cp.Signature); err != nil {
				return fail(fmt.Errorf("audit append: checkpoint at seq %d: %w", seq, err), ps[i+1:])
			}
			lastCheckpoint = seq
		}
	}
	if len(written) == 0 {
		return nil, nil
	}
	if err := tx.Commit(); err != nil {
		return written, fmt.Errorf("audit append: commit: %w", err)
	}
	return written, nil
}

// applyAndSeal runs p.apply and seals p.rec inside a savepoint, so that if
// either fails nothing of p remains in the transaction. refused is p's own
// failure; err is one that breaks the whole transaction.
func (s *Store) applyAndSeal(ctx context.Context, tx *sql.Tx, p *pending, prevHash string, seq int64) (body []byte, refused, err error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT audit_apply"); err != nil {
		return nil, nil, fmt.Errorf("audit append: savepoint: %w", err)
	}
	if aerr := p.apply(ctx, tx); aerr != nil {
		var sk *skipped
		if errors.As(aerr, &sk) {
			refused = sk.err
		} else {
			s.logger.Warn("audit append: state change failed; record not written", "call_id", p.rec.CallID, "err", aerr)
			refused = fmt.Errorf("audit append: %w", aerr)
		}
	} else if body, err = p.rec.SealCanonical(prevHash, seq); err != nil {
		refused = fmt.Errorf("audit append: %w", err)
	}
	if refused != nil {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO audit_apply"); err != nil {
			return nil, nil, fmt.Errorf("audit append: rollback to savepoint: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE audit_apply"); err != nil {
		return nil, nil, fmt.Errorf("audit append: release savepoint: %w", err)
	}
	return body, refused, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readHead returns the seq and hash of the last record, or 0 and the genesis
// hash for an empty trail.
func readHead(ctx context.Context, q queryRower) (int64, string, error) {
	var seq int64
	var hash string
	err := q.QueryRowContext(ctx, "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1").Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, audit.GenesisHash, nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read audit head: %w", err)
	}
	return seq, hash, nil
}

// AuditFilter selects audit records. Zero fields select everything.
type AuditFilter = store.AuditFilter

const recordColumns = "seq, id, time, tenant, agent, decision, kind, call_id, body, hash"

// AuditRecords returns the records f selects, in seq order (descending with
// f.Desc).
func (s *Store) AuditRecords(ctx context.Context, f AuditFilter) ([]*audit.Record, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("audit query: negative limit %d", f.Limit)
	}
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.Tenant != "" {
		add("tenant = ?", f.Tenant)
	}
	if f.Agent != "" {
		add("agent = ?", f.Agent)
	}
	if f.Decision != "" {
		add("decision = ?", f.Decision)
	}
	if f.CallID != "" {
		add("call_id = ?", f.CallID)
	}
	if !f.Since.IsZero() {
		add("time >= ?", f.Since.UTC().Format(timeColumn))
	}
	if !f.Until.IsZero() {
		add("time < ?", f.Until.UTC().Format(timeColumn))
	}
	if f.AfterSeq > 0 {
		add("seq > ?", f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		add("seq < ?", f.BeforeSeq)
	}
	q := "SELECT " + recordColumns + " FROM audit_records"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq"
	if f.Desc {
		q += " DESC"
	}
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit query: %w", err)
	}
	defer rows.Close()
	var out []*audit.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("audit query: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit query: %w", err)
	}
	return out, nil
}

// AuditAll calls fn with every record in seq order, from one consistent
// snapshot, stopping at the first error fn returns (which AuditAll returns
// as is). For verify and export.
func (s *Store) AuditAll(ctx context.Context, fn func(*audit.Record) error) error {
	rows, err := s.db.QueryContext(ctx, "SELECT "+recordColumns+" FROM audit_records ORDER BY seq")
	if err != nil {
		return fmt.Errorf("audit read: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return fmt.Errorf("audit read: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit read: %w", err)
	}
	return nil
}

// undecodable is a stored record that cannot be turned back into a Record:
// for verification, a record altered beyond recognition.
type undecodable struct {
	seq int64
	err error
}

func (e *undecodable) Error() string { return fmt.Sprintf("record %d: %v", e.seq, e.err) }
func (e *undecodable) Unwrap() error { return e.err }

// scanRecord rebuilds a record from its row. The columns take precedence
// over the same fields in body: they are what queries select on, so they
// must be what verification hashes.
func scanRecord(rows *sql.Rows) (*audit.Record, error) {
	var (
		seq                                           int64
		id, tm, tenant, agent, decision, kind, callID string
		body, hash                                    string
	)
	if err := rows.Scan(&seq, &id, &tm, &tenant, &agent, &decision, &kind, &callID, &body, &hash); err != nil {
		return nil, err
	}
	var r audit.Record
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, &undecodable{seq, fmt.Errorf("body: %w", err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &undecodable{seq, errors.New("body: data after the record")}
	}
	t, err := time.Parse(time.RFC3339Nano, tm)
	if err != nil {
		return nil, &undecodable{seq, fmt.Errorf("time column: %w", err)}
	}
	r.Seq, r.ID, r.Time, r.Hash = seq, id, t, hash
	r.Tenant, r.Agent, r.Decision, r.Kind, r.CallID = tenant, agent, decision, kind, callID
	return &r, nil
}

// Checkpoints returns every audit checkpoint in seq order.
func (s *Store) Checkpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT seq, hash, time, key_id, signature FROM audit_checkpoints ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	defer rows.Close()
	var out []audit.Checkpoint
	for rows.Next() {
		var cp audit.Checkpoint
		var tm string
		if err := rows.Scan(&cp.Seq, &cp.Hash, &tm, &cp.KeyID, &cp.Signature); err != nil {
			return nil, fmt.Errorf("audit checkpoints: %w", err)
		}
		// A time that does not parse cannot match its signature; leave it
		// zero and let verification say so.
		cp.Time, _ = time.Parse(time.RFC3339Nano, tm)
		out = append(out, cp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	return out, nil
}

// VerifyAudit verifies the whole stored trail against its checkpoints (see
// audit.Verify), recomputing every hash from the stored columns and body. A
// broken chain is a *audit.VerifyError naming the first bad seq; any other
// error means the trail could not be read.
func (s *Store) VerifyAudit(ctx context.Context, pub ed25519.PublicKey) (audit.VerifyResult, error) {
	// Checkpoints are read before the records: records are only ever added,
	// so every record a checkpoint read here names is in the later read. The
	// other way round, a checkpoint committed in between would look like a
	// truncated tail.
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		return audit.VerifyResult{}, err
	}
	v := audit.NewVerifier(cps, pub)
	err = s.AuditAll(ctx, v.Add)
	res, verr := v.Result()
	var bad *undecodable
	switch {
	case errors.As(err, &bad):
		if next := res.LastSeq + 1; next < bad.seq {
			return res, &audit.VerifyError{Seq: next, Problem: fmt.Sprintf("record missing (the next record stored has seq %d)", bad.seq)}
		}
		return res, &audit.VerifyError{Seq: bad.seq, Problem: "stored record cannot be decoded: " + bad.err.Error()}
	case err != nil && verr == nil:
		return res, err
	}
	return res, verr
}
