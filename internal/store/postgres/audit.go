package postgres

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

// timeColumn is the format of every *time/*_at text column the audit and
// call tables sort on: UTC with nine fractional digits (as in sqlite).
const timeColumn = sqlshared.TimeColumn

type pending = sqlshared.Pending[pgx.Tx]

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
// r, in a savepoint (see sqlshared.Writer.Enqueue), and announces events with it.
func (s *Store) appendWith(ctx context.Context, r *audit.Record, apply func(context.Context, pgx.Tx) error, events ...string) error {
	return s.writer.Enqueue(ctx, r, apply, events)
}

// QueueDepth returns how many appends are waiting for their commit.
func (s *Store) QueueDepth() int { return s.writer.Depth() }

// maxBatch caps the records of one group commit: a long queue is written
// in several transactions, each small enough to finish well within the
// commit deadline; the rest stays queued for the next batch.
const maxBatch = 256

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
		in, cerr := s.committed(doubt.pid, written[len(written)-1].Rec)
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
	msg := "audit commit failed"
	if errors.Is(err, ErrCommitUnknown) {
		msg = "audit commit outcome unknown"
	}
	s.writer.ReplyAll(written, err, msg)
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
//
// A batch whose state changes are all single statements (sqlshared.Stmt:
// a call's commit, a plain append has none) is pipelined, see
// insertPipelined; if that cannot finish it as the record-by-record path
// would, or a record needs its apply function, the batch goes record by
// record (insertEach), each state change in a savepoint.
func (s *Store) insert(ctx context.Context, ps []*pending) (written []*pending, err error) {
	pipelined := true
	for _, p := range ps {
		if p.Apply != nil && p.Stmt == nil {
			pipelined = false
			break
		}
	}
	if pipelined {
		written, done, err := s.insertPipelined(ctx, ps)
		if done {
			s.pipelined.Add(1)
			return written, err
		}
		s.fallbacks.Add(1)
		s.logger.Debug("audit append: pipelined batch undone; writing it record by record", "records", len(ps), "err", err)
	}
	return s.insertEach(ctx, ps)
}

// insertPipelined writes the batch ps in one transaction with two round
// trips besides BEGIN and COMMIT, whatever its size: one pipeline takes
// the audit lock, reads the head and the last checkpoint and runs every
// record's state change (in order, so two records changing one call do
// as they would one after the other; a conditional change that matches no
// row refuses its record, with no savepoint needed since nothing changed);
// the records that remain are sealed in order, and a second pipeline
// inserts them with their checkpoints and sends the events; then COMMIT.
//
// done is false if nothing was committed nor answered and the batch must
// go record by record: a state change failed (which aborts the whole
// transaction: the other path makes it fail alone) or a changed record
// could not be sealed (the other path undoes its change). Otherwise it
// answers the refused records itself and returns the others as insert.
func (s *Store) insertPipelined(ctx context.Context, ps []*pending) (written []*pending, done bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return ps, true, fmt.Errorf("audit append: begin: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit

	b := &pgx.Batch{}
	b.Queue("SELECT pg_advisory_xact_lock($1)", auditLock)
	b.Queue("SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1")
	if s.signer != nil {
		b.Queue("SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints")
	}
	for _, p := range ps {
		if p.Stmt != nil {
			b.Queue(p.Stmt.SQL, p.Stmt.Args...)
		}
	}
	// Any error in this pipeline may be one record's (a statement that
	// cannot even be sent fails the pipeline from its start): the batch
	// then goes record by record, which fails that record alone, or the
	// batch as it would have anyway. Not once the deadline has passed.
	undo := func(err error) ([]*pending, bool, error) {
		if ctx.Err() != nil {
			return ps, true, fmt.Errorf("audit append: %w", err)
		}
		return nil, false, err
	}
	br := tx.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return undo(fmt.Errorf("lock: %w", err))
	}
	seq, hash := int64(0), audit.GenesisHash
	if err := br.QueryRow().Scan(&seq, &hash); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		br.Close()
		return undo(fmt.Errorf("read audit head: %w", err))
	}
	var lastCheckpoint int64
	if s.signer != nil {
		if err := br.QueryRow().Scan(&lastCheckpoint); err != nil {
			br.Close()
			return undo(fmt.Errorf("last checkpoint: %w", err))
		}
	}
	// refused[i]: ps[i]'s state change matched no row.
	refused := make([]error, len(ps))
	changed := make([]bool, len(ps))
	for i, p := range ps {
		if p.Stmt == nil {
			continue
		}
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return undo(fmt.Errorf("state change of record %s: %w", p.Rec.ID, err))
		}
		if p.Stmt.NoRows != nil && tag.RowsAffected() == 0 {
			refused[i] = p.Stmt.NoRows
		} else {
			changed[i] = true
		}
	}
	if err := br.Close(); err != nil {
		return undo(fmt.Errorf("state changes: %w", err))
	}

	// Seal, in order, what remains. Nothing is answered before every
	// record is sealed: until then the batch may still go record by record.
	b = &pgx.Batch{}
	written = make([]*pending, 0, len(ps))
	for i, p := range ps {
		if refused[i] != nil {
			continue
		}
		body, err := p.Rec.SealCanonical(hash, seq+1)
		if err != nil {
			if changed[i] {
				return nil, false, fmt.Errorf("seal record %s: %w", p.Rec.ID, err)
			}
			refused[i] = fmt.Errorf("audit append: %w", err)
			continue
		}
		r := p.Rec
		b.Queue(insertRecord, r.Seq, r.ID, r.Time.UTC().Format(timeColumn),
			r.Tenant, r.Agent, r.Decision, r.Kind, r.CallID, string(body), r.Hash)
		written = append(written, p)
		seq, hash = r.Seq, r.Hash
		if s.signer != nil && seq-lastCheckpoint >= s.writer.CheckpointEvery {
			b.Queue(insertCheckpoint, sqlshared.NewCheckpoint(s.signer, seq, hash)...)
			lastCheckpoint = seq
		}
	}
	for i, p := range ps {
		if refused[i] != nil {
			s.writer.Reply(p, refused[i])
		}
	}
	if len(written) == 0 {
		return written, true, nil
	}
	seen := map[string]bool{}
	for _, p := range written {
		for _, e := range p.Notify {
			if !seen[e] {
				seen[e] = true
				b.Queue("SELECT pg_notify($1, $2)", Channel, e)
			}
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return written, true, fmt.Errorf("audit append: insert seq %d-%d: %w", written[0].Rec.Seq, seq, err)
	}
	pid := tx.Conn().PgConn().PID()
	if err := tx.Commit(ctx); err != nil {
		return written, true, &inDoubt{pid: pid, err: err}
	}
	return written, true, nil
}

const insertRecord = `INSERT INTO audit_records
	(seq, id, time, tenant, agent, decision, kind, call_id, body, hash)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

const insertCheckpoint = "INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES ($1, $2, $3, $4, $5)"

// stmtApply returns the apply function that runs stmt in its transaction.
func stmtApply(stmt *sqlshared.Stmt) func(context.Context, pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, stmt.SQL, stmt.Args...)
		if err != nil {
			return err
		}
		if stmt.NoRows != nil && tag.RowsAffected() == 0 {
			return sqlshared.Skip(stmt.NoRows)
		}
		return nil
	}
}

// insertEach is insert record by record: each state change (Apply) runs
// in a savepoint, so that one that fails undoes only itself.
func (s *Store) insertEach(ctx context.Context, ps []*pending) (written []*pending, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return ps, fmt.Errorf("audit append: begin: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", auditLock); err != nil {
		return ps, fmt.Errorf("audit append: lock: %w", err)
	}
	seq, hash, err := readHead(ctx, tx)
	if err != nil {
		return ps, fmt.Errorf("audit append: %w", err)
	}
	var lastCheckpoint int64
	if s.signer != nil {
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints").Scan(&lastCheckpoint); err != nil {
			return ps, fmt.Errorf("audit append: last checkpoint: %w", err)
		}
	}
	written, err = s.writer.Seal(ctx, sqlshared.Batch[pgx.Tx]{
		Tx: tx,
		Exec: func(ctx context.Context, stmt string) error {
			_, err := tx.Exec(ctx, stmt)
			return err
		},
		Insert: func(ctx context.Context, r *audit.Record, body []byte) error {
			_, err := tx.Exec(ctx, insertRecord,
				r.Seq, r.ID, r.Time.UTC().Format(timeColumn),
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
	events := map[string]bool{}
	for _, p := range written {
		for _, e := range p.Notify {
			events[e] = true
		}
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

// AuditRecords returns the records f selects, in seq order (descending
// with f.Desc).
func (s *Store) AuditRecords(ctx context.Context, f store.AuditFilter) ([]*audit.Record, error) {
	q, args, err := sqlshared.AuditQuery(f, sqlshared.Dollar)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, q, args...)
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
	rows, err := q.Query(ctx, "SELECT "+sqlshared.RecordColumns+" FROM audit_records ORDER BY seq")
	if err != nil {
		return fmt.Errorf("audit read: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanRecords(rows, "audit read", fn)
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
	return sqlshared.ScanCheckpoints(rows)
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
	return sqlshared.VerifyResult(err, res, verr)
}
