package sqlite

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

// The dispatcher's audit sink is any type with this method; the Store is one.
var _ interface {
	Append(ctx context.Context, r *audit.Record) error
} = (*Store)(nil)

// timeColumn is the format of audit_records.time: UTC with a fixed nine
// fractional digits, so that comparing the text compares the times.
const timeColumn = sqlshared.TimeColumn

type pending = sqlshared.Pending[*sql.Tx]

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
// call's status, say): see sqlshared.Writer.Enqueue.
func (s *Store) appendWith(ctx context.Context, r *audit.Record, apply func(context.Context, *sql.Tx) error) error {
	return s.writer.Enqueue(ctx, r, apply, nil)
}

// AppendUnbatched is Append without group commit: one transaction, and one
// fsync, per record, on the caller's goroutine. It exists as the baseline
// for bench/auditbench; use Append.
func (s *Store) AppendUnbatched(ctx context.Context, r *audit.Record) error {
	return s.writer.Unqueued(r, func(ps []*pending) {
		s.unbatched.Lock()
		defer s.unbatched.Unlock()
		s.commit(ctx, ps)
	})
}

// QueueDepth returns how many appends are waiting for their commit: queued
// for the writer or in the batch it is committing.
func (s *Store) QueueDepth() int { return s.writer.Depth() }

// Head returns the seq and hash of the last record this Store committed, or
// found when it opened. Another process may have appended since.
func (s *Store) Head() (seq int64, hash string) {
	s.headMu.Lock()
	defer s.headMu.Unlock()
	return s.headSeq, s.headHash
}

// startWriter starts the audit writer goroutine. It takes every append
// waiting in the queue, commits them together, answers them all, and
// repeats until Close closes the queue.
func (s *Store) startWriter(queueSize int) {
	s.writer.Start(queueSize, func(ps []*pending) {
		// No deadline: waiting for the write lock is bounded by the busy
		// timeout, and an fsync cannot be interrupted anyway. (A context
		// that can end also costs the driver a goroutine per statement.)
		s.commit(context.Background(), ps)
	}, func() {
		if s.writer.Queued() > 0 && s.othersWaiting() {
			// Back-to-back commits hold SQLite's write lock almost without
			// a gap, and another process (warden kill, apply, approvals
			// approve) polling for it in its busy handler would starve.
			// It has announced itself (Announce): leave it a window; the
			// records arriving meanwhile join the next batch.
			time.Sleep(commitGap)
		}
	})
}

// commitGap is the pause between back-to-back group commits while another
// process waits for the write lock.
const commitGap = 2 * time.Millisecond

// commit writes ps in one transaction and answers each of them. A record
// that cannot be encoded fails alone; any other failure fails them all, and
// none of them is visible.
func (s *Store) commit(ctx context.Context, ps []*pending) {
	written, err := s.insert(ctx, ps)
	if err == nil && len(written) > 0 {
		last := written[len(written)-1].Rec
		s.headMu.Lock()
		s.headSeq, s.headHash = last.Seq, last.Hash
		s.headMu.Unlock()
	}
	s.writer.ReplyAll(written, err, "audit commit failed")
}

// insert runs the transaction for commit. It answers the records it refuses
// itself and returns the others, which the caller answers with err.
func (s *Store) insert(ctx context.Context, ps []*pending) (written []*pending, err error) {
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock now
	if err != nil {
		return ps, fmt.Errorf("audit append: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	// Another process may have appended since we last did: the head is
	// whatever the table says now that we hold the write lock.
	seq, hash, err := readHead(ctx, tx)
	if err != nil {
		return ps, fmt.Errorf("audit append: %w", err)
	}
	var lastCheckpoint int64
	if s.signer != nil {
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints").Scan(&lastCheckpoint); err != nil {
			return ps, fmt.Errorf("audit append: last checkpoint: %w", err)
		}
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO audit_records
		(seq, id, time, tenant, agent, decision, kind, call_id, body, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return ps, fmt.Errorf("audit append: %w", err)
	}
	defer ins.Close()

	written, err = s.writer.Seal(ctx, sqlshared.Batch[*sql.Tx]{
		Tx: tx,
		Exec: func(ctx context.Context, stmt string) error {
			_, err := tx.ExecContext(ctx, stmt)
			return err
		},
		Insert: func(ctx context.Context, r *audit.Record, body []byte) error {
			_, err := ins.ExecContext(ctx, r.Seq, r.ID, r.Time.UTC().Format(timeColumn),
				r.Tenant, r.Agent, r.Decision, r.Kind, r.CallID, string(body), r.Hash)
			return err
		},
		Checkpoint: func(ctx context.Context, seq int64, hash string) error {
			return s.insertCheckpoint(ctx, tx, seq, hash)
		},
	}, ps, seq, hash, lastCheckpoint)
	if err != nil || len(written) == 0 {
		return written, err
	}
	if err := tx.Commit(); err != nil {
		return written, fmt.Errorf("audit append: commit: %w", err)
	}
	return written, nil
}

// insertCheckpoint signs the chain at seq, hash and stores the checkpoint.
func (s *Store) insertCheckpoint(ctx context.Context, tx *sql.Tx, seq int64, hash string) error {
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)",
		sqlshared.NewCheckpoint(s.signer, seq, hash)...); err != nil {
		return fmt.Errorf("checkpoint at seq %d: %w", seq, err)
	}
	return nil
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

// AuditRecords returns the records f selects, in seq order (descending with
// f.Desc).
func (s *Store) AuditRecords(ctx context.Context, f AuditFilter) ([]*audit.Record, error) {
	q, args, err := sqlshared.AuditQuery(f, sqlshared.Question)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit query: %w", err)
	}
	defer rows.Close()
	var out []*audit.Record
	err = sqlshared.ScanRecords(rows, "audit query", func(r *audit.Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// AuditAll calls fn with every record in seq order, from one consistent
// snapshot, stopping at the first error fn returns (which AuditAll returns
// as is). For verify and export.
func (s *Store) AuditAll(ctx context.Context, fn func(*audit.Record) error) error {
	rows, err := s.db.QueryContext(ctx, "SELECT "+sqlshared.RecordColumns+" FROM audit_records ORDER BY seq")
	if err != nil {
		return fmt.Errorf("audit read: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanRecords(rows, "audit read", fn)
}

// Checkpoints returns every audit checkpoint in seq order.
func (s *Store) Checkpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT seq, hash, time, key_id, signature FROM audit_checkpoints ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanCheckpoints(rows)
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
	return sqlshared.VerifyResult(err, res, verr)
}
