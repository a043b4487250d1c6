// Package sqlite is warden's embedded store: one SQLite file (the default
// `--db`, ./warden.db) that `warden serve` and the CLI commands open at the
// same time. It holds the audit trail today; the other tables warden keeps
// (tokens, calls, the kill switch...) belong here too, each with its own
// migration and its code in this package, sharing Store.DB.
//
// What lives here: opening the file with the settings every connection needs
// (WAL, synchronous=FULL, a busy timeout, foreign keys, BEGIN IMMEDIATE for
// write transactions), the embedded schema migrations, and the audit writer,
// which group-commits records into a hash chain. What does not: the record
// format, hashing and verification rules (internal/audit), and deciding what
// to record (the dispatcher).
//
// # Transactions
//
// Every connection opens write transactions (sql.DB.BeginTx without
// ReadOnly) with BEGIN IMMEDIATE, so a transaction that will write takes the
// file's write lock up front, waiting up to the busy timeout for another
// writer in this or another process, instead of failing with SQLITE_BUSY
// half-way. Pass &sql.TxOptions{ReadOnly: true} for read-only transactions so
// they do not queue behind writers.
//
// # Migrations
//
// migrations/NNNN_name.sql files are embedded and applied in version order,
// each in the one transaction Open runs, and recorded in schema_migrations.
// Adding a table is adding a file with the next number. A migration must be
// transactional SQL (no PRAGMA journal_mode, no VACUUM).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/sqlshared"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = store.ErrClosed

// Options tunes a Store. The zero value is usable.
type Options struct {
	// Signer signs a checkpoint every CheckpointEvery records. Nil means no
	// checkpoints are written (tests, or a CLI without access to the key).
	Signer *audit.Signer
	// CheckpointEvery is how many records may follow the last checkpoint
	// before the next one is written. Default 1000.
	CheckpointEvery int
	// QueueSize is how many appends may wait for the audit writer before
	// Append blocks; it also bounds one group commit. Default 4096.
	QueueSize int
}

func (o Options) withDefaults() Options {
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 1000
	}
	if o.QueueSize == 0 {
		o.QueueSize = 4096
	}
	return o
}

// Validate reports every problem with o at once.
func (o Options) Validate() error {
	var errs []error
	if o.CheckpointEvery < 0 {
		errs = append(errs, fmt.Errorf("checkpoint every %d records: must not be negative", o.CheckpointEvery))
	}
	if o.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("queue size %d: must not be negative", o.QueueSize))
	}
	return errors.Join(errs...)
}

// Store is an open SQLite store. It is safe for concurrent use, also by
// several processes on the same file. Close it when done.
type Store struct {
	db     *sql.DB
	logger *slog.Logger
	signer *audit.Signer

	writer    *sqlshared.Writer[*sql.Tx] // the audit writer's queue
	closeOnce sync.Once
	closeErr  error

	// unbatched serialises AppendUnbatched within this process, so that its
	// callers queue on a mutex rather than on SQLite's busy-wait sleeps.
	unbatched sync.Mutex

	file string // the database file, for the waiting-writer marker

	// Owned by the writer goroutine: the cached othersWaiting answer.
	waitCheckedAt time.Time
	waitSeen      bool

	withdraw func() // set by Announce; Close calls it

	headMu   sync.Mutex
	headSeq  int64
	headHash string
}

// Open opens (creating it if need be) the SQLite database at path, applies
// pending migrations and starts the audit writer. path is a file path or
// sqlite://PATH; ":memory:" is refused, since every pooled connection would
// see a different database. Pass at most one Options; none means defaults.
// A nil logger discards logs.
func Open(ctx context.Context, path string, logger *slog.Logger, opts ...Options) (*Store, error) {
	if len(opts) > 1 {
		return nil, errors.New("sqlite: Open takes at most one Options")
	}
	var o Options
	if len(opts) == 1 {
		o = opts[0]
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("sqlite: options: %w", err)
	}
	o = o.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	file, err := filePath(path)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(file))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", file, err)
	}
	s, err := open(ctx, db, file, logger, o)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func open(ctx context.Context, db *sql.DB, file string, logger *slog.Logger, o Options) (*Store, error) {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", file, err)
	}
	if !strings.EqualFold(mode, "wal") {
		// Still correct, only slower, and readers block the writer.
		logger.Warn("sqlite: WAL journal mode unavailable; file system may not support it", "path", file, "journal_mode", mode)
	}
	if err := migrate(ctx, db, logger); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", file, err)
	}
	seq, hash, err := readHead(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", file, err)
	}
	s := &Store{
		db:       db,
		logger:   logger,
		signer:   o.Signer,
		writer:   sqlshared.NewWriter[*sql.Tx](logger, o.Signer, o.CheckpointEvery, o.QueueSize),
		headSeq:  seq,
		headHash: hash,
		file:     file,
	}
	s.startWriter(o.QueueSize)
	logger.Info("sqlite store open", "path", file, "audit_seq", seq, "checkpoints", o.Signer != nil)
	return s, nil
}

// filePath turns the --db value into a file name.
func filePath(path string) (string, error) {
	file := strings.TrimPrefix(path, "sqlite://")
	switch {
	case file == "":
		return "", errors.New("sqlite: empty database path")
	case file == ":memory:" || strings.Contains(file, "mode=memory"):
		return "", fmt.Errorf("sqlite: %q: in-memory databases are not supported (each connection would see its own)", path)
	case strings.Contains(file, "?"):
		return "", fmt.Errorf("sqlite: %q: query parameters in the path are not supported", path)
	}
	return file, nil
}

// dsn adds the settings every connection needs. The driver applies
// busy_timeout before the others, so that switching a new file to WAL waits
// for a concurrent opener instead of failing.
func dsn(file string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return file + "?" + q.Encode()
}

// DB returns the underlying database, for the code of other tables in this
// package. Write transactions begin IMMEDIATE (see the package comment).
func (s *Store) DB() *sql.DB { return s.db }

// Close waits for every append already accepted to be committed (or to
// fail), stops the audit writer and closes the database. Appends after Close
// fail with ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.writer.Close()
		if s.withdraw != nil {
			s.withdraw()
		}
		if err := s.finalCheckpoint(); err != nil {
			s.logger.Error("final audit checkpoint", "err", err)
			s.closeErr = err
		}
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return s.closeErr
}

// finalCheckpoint signs the chain's head on Close if records were appended
// since the last checkpoint, so that a clean shutdown leaves no unsigned
// tail that could be rewritten unnoticed.
func (s *Store) finalCheckpoint() error {
	if s.signer == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: final checkpoint: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	seq, hash, err := readHead(ctx, tx)
	if err != nil {
		return fmt.Errorf("sqlite: final checkpoint: %w", err)
	}
	var last int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints").Scan(&last); err != nil {
		return fmt.Errorf("sqlite: final checkpoint: %w", err)
	}
	if seq == 0 || seq <= last {
		return nil
	}
	if err := s.insertCheckpoint(ctx, tx, seq, hash); err != nil {
		return fmt.Errorf("sqlite: final %w", err)
	}
	return tx.Commit()
}

// Announce tells the other processes using this file that this one is
// about to write (a CLI command beside a busy server): while it is set,
// their group-commit writers leave a gap between back-to-back commits, so
// that SQLite's busy handler here finds the write lock free instead of
// starving. Close (or the returned function) withdraws it.
func (s *Store) Announce() (withdraw func()) {
	marker := s.file + "-writer-waiting"
	f, err := os.OpenFile(marker, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		s.logger.Warn("cannot announce a waiting writer", "err", err)
		return func() {}
	}
	f.Close()
	var once sync.Once
	withdraw = func() { once.Do(func() { os.Remove(marker) }) }
	s.withdraw = withdraw
	return withdraw
}

// othersWaiting reports whether another process has announced it waits
// for the write lock. The check (a stat) is cached for 50 ms.
func (s *Store) othersWaiting() bool {
	now := time.Now()
	if now.Sub(s.waitCheckedAt) < 50*time.Millisecond {
		return s.waitSeen
	}
	s.waitCheckedAt = now
	_, err := os.Stat(s.file + "-writer-waiting")
	s.waitSeen = err == nil
	return s.waitSeen
}

var _ store.Store = (*Store)(nil)
