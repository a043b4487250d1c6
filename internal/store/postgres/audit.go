package postgres

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/store"
)

// timeColumn is the format of every *time/*_at text column the audit and
// call tables sort on: UTC with nine fractional digits (as in sqlite).
const timeColumn = "2006-01-02T15:04:05.000000000Z"

const (
	stateQueued int32 = iota
	stateClaimed
	stateAbandoned
)

type pending struct {
	rec    *audit.Record
	apply  func(context.Context, pgx.Tx) error // optional, see appendWith
	notify []string                            // event payloads sent with the commit
	state  atomic.Int32
	done   chan error
}

// skipped marks an apply error as an expected refusal (a conflict).
type skipped struct{ err error }

func (e *skipped) Error() string { return e.err.Error() }
func (e *skipped) Unwrap() error { return e.err }

func skip(err error) error { return &skipped{err} }

func (s *Store) reply(p *pending, err error) {
	if err != nil {
		p.rec.Seq, p.rec.PrevHash, p.rec.Hash = 0, "", ""
	}
	s.depth.Add(-1)
	p.done <- err
}

// Append adds r to the audit trail and returns once it is durable
// (committed with synchronous_commit=on, batched with every append
// pending on this replica). On success r.Seq, r.PrevHash and r.Hash are
// set; on error r is not in the trail, unless the error wraps
// ErrCommitUnknown (the database could not tell in time whether the
// commit took effect).
func (s *Store) Append(ctx context.Context, r *audit.Record) error {
	return s.appendWith(ctx, r, nil)
}

// appendWith is Append that also runs apply in the transaction that writes
// r, in a savepoint (see the sqlite store), and announces events with it.
func (s *Store) appendWith(ctx context.Context, r *audit.Record, apply func(context.Context, pgx.Tx) error, events ...string) error {
	if r == nil {
		return errors.New("audit append: nil record")
	}
	if r.ID == "" {
		r.ID = audit.NewID()
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	p := &pending{rec: r, apply: apply, notify: events, done: make(chan error, 1)}
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

// QueueDepth returns how many appends are waiting for their commit.
func (s *Store) QueueDepth() int { return int(s.depth.Load()) }

// maxBatch caps the records of one group commit: a long queue is written
// in several transactions, each small enough to finish well within the
// commit deadline; the rest stays queued for the next batch.
const maxBatch = 256

// write is the audit writer goroutine of this replica.
func (s *Store) write() {
	defer close(s.writerDone)
	batch := make([]*pending, 0, min(cap(s.queue), maxBatch))
	for {
		p, ok := <-s.queue
		if !ok {
			return
		}
		batch = append(batch[:0], p)
	drain:
		for len(batch) < cap(batch) {
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
			if p.state.CompareAndSwap(stateQueued, stateClaimed) {
				claimed = append(claimed, p)
			}
		}
		if len(claimed) > 0 {
			s.commit(claimed)
		}
		clear(batch[:cap(batch)])
	}
}

// defaultCommitTimeout bounds one group commit: with the database gone,
// appends fail (and their calls fail closed) instead of hanging. It also
// bounds how long an unknown commit outcome is looked into.
const defaultCommitTimeout = 10 * time.Second

// ErrCommitUnknown is in the error of an append whose COMMIT may or may not
// have taken effect: the connection broke (or the commit deadline passed)
// during COMMIT, and the database could not be asked within the commit
// timeout whether the record is in the trail. Such a record may be in the
// trail; callers must not assume it is absent.
var ErrCommitUnknown = errors.New("commit outcome unknown")

// inDoubt is the error of a batch whose COMMIT did not answer.
type inDoubt struct {
	pid uint32 // the backend that ran the transaction
	err error
}

func (e *inDoubt) Error() string { return "audit append: commit: " + e.err.Error() }
func (e *inDoubt) Unwrap() error { return e.err }

func (s *Store) commit(ps []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), s.commitTimeout)
	defer cancel()
	written, err := s.insert(ctx, ps)
	var doubt *inDoubt
	if err != nil && len(written) > 0 && errors.As(err, &doubt) {
		// The connection broke during COMMIT, or COMMIT outlasted the
		// deadline: the batch is either wholly in or wholly out (or still
		// on its way in). Look for its last record once its transaction
		// has ended, so an acknowledged record is never reported lost nor
		// a lost one acknowledged.
		in, cerr := s.committed(doubt.pid, written[len(written)-1].rec)
		switch {
		case cerr != nil:
			err = fmt.Errorf("audit append: %w: the database did not say within %v whether the batch's %d records are in the trail (%w; commit: %w)",
				ErrCommitUnknown, s.commitTimeout, len(written), cerr, doubt.err)
		case in:
			err = nil
		default:
			err = fmt.Errorf("audit append: commit failed, the records are not in the trail: %w", doubt.err)
		}
	}
	if err != nil {
		msg := "audit commit failed"
		if errors.Is(err, ErrCommitUnknown) {
			msg = "audit commit outcome unknown"
		}
		s.logger.Error(msg, "records", len(written), "err", err)
		for _, p := range written {
			s.reply(p, err)
		}
		return
	}
	for _, p := range written {
		s.reply(p, nil)
	}
}

// committed reports whether r (sealed, with its seq and hash) is stored.
// The transaction that wrote it (on backend pid) holds the audit lock
// until it has committed or aborted, so the check takes that lock first:
// looking earlier could miss a commit still on its way. That backend, if
// still there, is terminated first (its client is gone), so a hung one
// cannot stall the check. It retries for up to the commit timeout (the
// database may be restarting), then returns the last error: the outcome
// is unknown.
func (s *Store) committed(pid uint32, r *audit.Record) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.commitTimeout)
	defer cancel()
	for {
		var n int
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if pid != 0 {
				// Only a backend of our role on this database named
				// warden: never anybody else's.
				if _, err := tx.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
					WHERE pid = $1 AND usename = current_user AND datname = current_database()
					AND application_name = 'warden' AND pid <> pg_backend_pid()`, int64(pid)); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", auditLock); err != nil {
				return err
			}
			return tx.QueryRow(ctx, "SELECT count(*) FROM audit_records WHERE seq = $1 AND id = $2 AND hash = $3",
				r.Seq, r.ID, r.Hash).Scan(&n)
		})
		if err == nil {
			return n == 1, nil
		}
		select {
		case <-ctx.Done():
			return false, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// insert runs one batch: under the audit advisory lock (held until the
// transaction ends, so batches of every replica form one chain), it reads
// the head, seals and inserts each record after its state change, adds
// checkpoints, sends the events, and commits.
func (s *Store) insert(ctx context.Context, ps []*pending) (written []*pending, err error) {
	written = make([]*pending, 0, len(ps))
	fail := func(e error, rest []*pending) ([]*pending, error) {
		return append(written, rest...), e
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fail(fmt.Errorf("audit append: begin: %w", err), ps)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", auditLock); err != nil {
		return fail(fmt.Errorf("audit append: lock: %w", err), ps)
	}
	seq, hash, err := readHead(ctx, tx)
	if err != nil {
		return fail(fmt.Errorf("audit append: %w", err), ps)
	}
	var lastCheckpoint int64
	if s.signer != nil {
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints").Scan(&lastCheckpoint); err != nil {
			return fail(fmt.Errorf("audit append: last checkpoint: %w", err), ps)
		}
	}
	events := map[string]bool{}
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
		if _, err := tx.Exec(ctx, `INSERT INTO audit_records
			(seq, id, time, tenant, agent, decision, kind, call_id, body, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			r.Seq, r.ID, r.Time.UTC().Format(timeColumn),
			r.Tenant, r.Agent, r.Decision, r.Kind, r.CallID, string(body), r.Hash); err != nil {
			return fail(fmt.Errorf("audit append: insert seq %d: %w", r.Seq, err), ps[i:])
		}
		written = append(written, p)
		seq, hash = r.Seq, r.Hash
		for _, e := range p.notify {
			events[e] = true
		}
		if s.signer != nil && seq-lastCheckpoint >= s.checkpointEvery {
			if err := s.insertCheckpoint(ctx, tx, seq, hash); err != nil {
				return fail(fmt.Errorf("audit append: %w", err), ps[i+1:])
			}
			lastCheckpoint = seq
		}
	}
	if len(written) == 0 {
		return nil, nil
	}
	for e := range events {
		if err := notify(ctx, tx, e); err != nil {
			return written, fmt.Errorf("audit append: notify: %w", err)
		}
	}
	pid := tx.Conn().PgConn().PID()
	if err := tx.Commit(ctx); err != nil {
		return written, &inDoubt{pid: pid, err: err}
	}
	return written, nil
}

func (s *Store) applyAndSeal(ctx context.Context, tx pgx.Tx, p *pending, prevHash string, seq int64) (body []byte, refused, err error) {
	if _, err := tx.Exec(ctx, "SAVEPOINT audit_apply"); err != nil {
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
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT audit_apply"); err != nil {
			return nil, nil, fmt.Errorf("audit append: rollback to savepoint: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT audit_apply"); err != nil {
		return nil, nil, fmt.Errorf("audit append: release savepoint: %w", err)
	}
	return body, refused, nil
}

// readHead returns the seq and hash of the last record, or 0 and the
// genesis hash for an empty trail.
func readHead(ctx context.Context, q execer) (int64, string, error) {
	var seq int64
	var hash string
	err := q.QueryRow(ctx, "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1").Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, audit.GenesisHash, nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read audit head: %w", err)
	}
	return seq, hash, nil
}

const recordColumns = "seq, id, time, tenant, agent, decision, kind, call_id, body, hash"

// AuditRecords returns the records f selects, in seq order (descending
// with f.Desc).
func (s *Store) AuditRecords(ctx context.Context, f store.AuditFilter) ([]*audit.Record, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("audit query: negative limit %d", f.Limit)
	}
	var where []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Tenant != "" {
		add("tenant = $%d", f.Tenant)
	}
	if f.Agent != "" {
		add("agent = $%d", f.Agent)
	}
	if f.Decision != "" {
		add("decision = $%d", f.Decision)
	}
	if f.CallID != "" {
		add("call_id = $%d", f.CallID)
	}
	if !f.Since.IsZero() {
		add("time >= $%d", f.Since.UTC().Format(timeColumn))
	}
	if !f.Until.IsZero() {
		add("time < $%d", f.Until.UTC().Format(timeColumn))
	}
	if f.AfterSeq > 0 {
		add("seq > $%d", f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		add("seq < $%d", f.BeforeSeq)
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
		args = append(args, f.Limit)
		q += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	rows, err := s.pool.Query(ctx, q, args...)
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
// snapshot, stopping at the first error fn returns (returned as is).
func (s *Store) AuditAll(ctx context.Context, fn func(*audit.Record) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("audit read: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // read-only
	return auditAll(ctx, tx, fn)
}

func auditAll(ctx context.Context, q execer, fn func(*audit.Record) error) error {
	rows, err := q.Query(ctx, "SELECT "+recordColumns+" FROM audit_records ORDER BY seq")
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

type undecodable struct {
	seq int64
	err error
}

func (e *undecodable) Error() string { return fmt.Sprintf("record %d: %v", e.seq, e.err) }
func (e *undecodable) Unwrap() error { return e.err }

// scanRecord rebuilds a record from its row; the columns take precedence
// over the same fields in body (they are what queries select on).
func scanRecord(rows pgx.Rows) (*audit.Record, error) {
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
	return checkpoints(ctx, s.pool)
}

func checkpoints(ctx context.Context, q execer) ([]audit.Checkpoint, error) {
	rows, err := q.Query(ctx, "SELECT seq, hash, time, key_id, signature FROM audit_checkpoints ORDER BY seq")
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
		cp.Time, _ = time.Parse(time.RFC3339Nano, tm)
		out = append(out, cp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	return out, nil
}

// VerifyAudit verifies the whole stored trail against its checkpoints,
// reading both from one snapshot (see audit.Verify).
func (s *Store) VerifyAudit(ctx context.Context, pub ed25519.PublicKey) (audit.VerifyResult, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return audit.VerifyResult{}, fmt.Errorf("audit verify: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // read-only
	cps, err := checkpoints(ctx, tx)
	if err != nil {
		return audit.VerifyResult{}, err
	}
	v := audit.NewVerifier(cps, pub)
	err = auditAll(ctx, tx, v.Add)
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
