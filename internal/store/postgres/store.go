// Package postgres is warden's store on PostgreSQL (`--db postgres://…`),
// for several stateless `warden serve` replicas behind a load balancer on
// one database. It implements everything the SQLite store does, with the
// same semantics (store/storetest runs one suite against both), and adds
// what sharing needs: migrations under an advisory lock, an audit hash
// chain that stays one total order across replicas, and LISTEN/NOTIFY
// events so that a change made on one replica reaches the others at once.
// docs/scale-out.md describes the design and its trade-offs.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

var _ store.Store = (*Store)(nil)
var _ store.Events = (*Store)(nil)

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = store.ErrClosed

// Channel is the LISTEN/NOTIFY channel every change is announced on.
const Channel = "warden_events"

// Advisory lock keys (pg_advisory_lock's bigint space is shared by every
// application on the database; these spell "wardenM" and "wardenA").
const (
	migrateLock int64 = 0x77617264656e4d // session lock while migrating
	auditLock   int64 = 0x77617264656e41 // transaction lock per audit batch
)

// Options tunes a Store. The zero value is usable.
type Options struct {
	// Signer signs a checkpoint every CheckpointEvery records. Nil means no
	// checkpoints are written (a CLI without the key).
	Signer *audit.Signer
	// CheckpointEvery: records between checkpoints. Default 1000.
	CheckpointEvery int
	// QueueSize bounds the appends waiting for the audit writer and one
	// group commit. Default 4096.
	QueueSize int
	// MaxConns bounds the connection pool (besides one LISTEN connection
	// per Subscribe). Default 16; a pool_max_conns URL parameter wins.
	MaxConns int32

	// commitTimeout overrides defaultCommitTimeout (tests).
	commitTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 1000
	}
	if o.QueueSize == 0 {
		o.QueueSize = 4096
	}
	if o.MaxConns == 0 {
		o.MaxConns = 16
	}
	if o.commitTimeout == 0 {
		o.commitTimeout = defaultCommitTimeout
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
	if o.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("max conns %d: must not be negative", o.MaxConns))
	}
	return errors.Join(errs...)
}

// Store is an open PostgreSQL store, safe for concurrent use and shared
// by any number of processes. Close it when done.
type Store struct {
	pool          *pgxpool.Pool
	connConfig    *pgx.ConnConfig // for the LISTEN connections
	logger        *slog.Logger
	signer        *audit.Signer
	commitTimeout time.Duration

	writer *sqlshared.Writer[pgx.Tx] // the audit writer's queue

	// Audit batches written pipelined, and those that went record by
	// record after all (see insert): tests.
	pipelined, fallbacks atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

// IsURL reports whether a --db value names a PostgreSQL database.
func IsURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Redact returns the URL without its passwords, for logs and errors: the
// user-info password and the values of the password and sslpassword
// parameters (which pgx also accepts) are replaced by xxxxx. A value that
// is not a URL is treated as a key=value connection string.
func Redact(db string) string {
	if !IsURL(db) {
		return redactKeywords(db)
	}
	u, err := url.Parse(db)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if u.RawQuery != "" {
		// Pair by pair, keeping the rest as it was (';' separates too in
		// what a mistyped URL may hold).
		var b strings.Builder
		rest := u.RawQuery
		for rest != "" {
			kv := rest
			sep := ""
			if i := strings.IndexAny(rest, "&;"); i >= 0 {
				kv, sep, rest = rest[:i], rest[i:i+1], rest[i+1:]
			} else {
				rest = ""
			}
			k, _, _ := strings.Cut(kv, "=")
			if uk, err := url.QueryUnescape(k); err == nil {
				k = uk
			}
			if secretParam(k) {
				kv = url.QueryEscape(k) + "=xxxxx"
			}
			b.WriteString(kv)
			b.WriteString(sep)
		}
		u.RawQuery = b.String()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.Redacted()
}

// secretParam reports whether a connection parameter holds a secret.
func secretParam(k string) bool {
	k = strings.ToLower(strings.TrimSpace(k))
	return k == "password" || k == "sslpassword"
}

// keyword matches one key=value setting of a connection string; the value
// is bare or single-quoted with backslash escapes (libpq's syntax).
var keyword = regexp.MustCompile(`([A-Za-z_]+)(\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s]*)`)

// redactKeywords masks the password settings of a key=value connection
// string.
func redactKeywords(db string) string {
	return keyword.ReplaceAllStringFunc(db, func(m string) string {
		sub := keyword.FindStringSubmatch(m)
		if !secretParam(sub[1]) {
			return m
		}
		return sub[1] + sub[2] + "xxxxx"
	})
}

// parseConfig parses the URL into a pool config with the settings warden
// relies on. Errors never quote the URL (it may hold a password).
func parseConfig(db string, o Options) (*pgxpool.Config, error) {
	if !IsURL(db) {
		return nil, errors.New("postgres: the URL must start with postgres:// or postgresql://")
	}
	cfg, err := pgxpool.ParseConfig(db)
	if err != nil {
		return nil, fmt.Errorf("postgres: cannot parse the URL %s (check its syntax)", Redact(db))
	}
	// Durable: a commit returns once the WAL is flushed (also when the
	// server's default says otherwise).
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["application_name"] = "warden"
	if !strings.Contains(db, "pool_max_conns") { // the URL's setting wins
		cfg.MaxConns = o.MaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	return cfg, nil
}

// Open connects to the database at db (postgres://…), applies pending
// migrations under an advisory lock (several replicas may start at once)
// and starts the audit writer. Pass at most one Options. A nil logger
// discards logs.
func Open(ctx context.Context, db string, logger *slog.Logger, opts ...Options) (*Store, error) {
	if len(opts) > 1 {
		return nil, errors.New("postgres: Open takes at most one Options")
	}
	var o Options
	if len(opts) == 1 {
		o = opts[0]
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("postgres: options: %w", err)
	}
	o = o.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := parseConfig(db, o)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", Redact(db), err)
	}
	if _, err := migrate(ctx, pool, false, logger); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %s: %w", Redact(db), err)
	}
	s := &Store{
		pool:          pool,
		connConfig:    cfg.ConnConfig,
		logger:        logger,
		signer:        o.Signer,
		commitTimeout: o.commitTimeout,
		writer:        sqlshared.NewWriter[pgx.Tx](logger, o.Signer, o.CheckpointEvery, o.QueueSize),
	}
	s.writer.Start(maxBatch, s.commit, nil)
	logger.Info("postgres store open", "db", Redact(db), "checkpoints", o.Signer != nil)
	return s, nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var one int
	return s.pool.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// Close waits for every accepted append, signs a final checkpoint, and
// closes the pool. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.writer.Close()
		if err := s.finalCheckpoint(); err != nil {
			s.logger.Error("final audit checkpoint", "err", err)
			s.closeErr = err
		}
		s.pool.Close()
	})
	return s.closeErr
}

// finalCheckpoint signs the chain's head if records were appended since
// the last checkpoint (by any replica).
func (s *Store) finalCheckpoint() error {
	if s.signer == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: final checkpoint: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", auditLock); err != nil {
		return fmt.Errorf("postgres: final checkpoint: %w", err)
	}
	seq, hash, err := readHead(ctx, tx)
	if err != nil {
		return fmt.Errorf("postgres: final checkpoint: %w", err)
	}
	var last int64
	if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints").Scan(&last); err != nil {
		return fmt.Errorf("postgres: final checkpoint: %w", err)
	}
	if seq == 0 || seq <= last {
		return nil
	}
	if err := s.insertCheckpoint(ctx, tx, seq, hash); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (s *Store) insertCheckpoint(ctx context.Context, tx pgx.Tx, seq int64, hash string) error {
	if _, err := tx.Exec(ctx, insertCheckpoint, sqlshared.NewCheckpoint(s.signer, seq, hash)...); err != nil {
		return fmt.Errorf("audit checkpoint at seq %d: %w", seq, err)
	}
	return nil
}

// notify announces an event to every replica when tx commits.
func notify(ctx context.Context, tx execer, payload string) error {
	_, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, payload)
	return err
}

// execer is a pool, a connection or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
