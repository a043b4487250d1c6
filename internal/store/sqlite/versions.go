package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

// Config versions (migration 0007): config_versions keeps every applied
// config as its files; config_activations is the history of what was live,
// the newest row being live now. Servers poll LiveConfig; apply and
// rollback write here from the CLI.

// Errors of the config version operations.
var (
	ErrAmbiguous  = store.ErrAmbiguous
	ErrNoPrevious = store.ErrNoPrevious
	ErrNoLive     = store.ErrNoLive
)

// ApplyConfig stores v unless a version with its hash exists (the first
// author, message and time then stay) and makes it live, in one
// transaction. It reports whether the version was new and whether it
// became live (false: it already was).
func (s *Store) ApplyConfig(ctx context.Context, v store.ConfigVersion, by string) (created, activated bool, err error) {
	files, err := json.Marshal(v.Files)
	if err != nil {
		return false, false, fmt.Errorf("apply config: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: concurrent applies serialise
	if err != nil {
		return false, false, fmt.Errorf("apply config: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	now := time.Now().UTC()
	if v.CreatedAt.IsZero() {
		v.CreatedAt = now
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO config_versions (version, files, author, message, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (version) DO NOTHING`,
		v.Version, string(files), v.Author, v.Message, v.CreatedAt.UTC().Format(timeColumn))
	if err != nil {
		return false, false, fmt.Errorf("apply config: %w", err)
	}
	n, _ := res.RowsAffected()
	created = n > 0
	liveID, live, err := liveTx(ctx, tx)
	if err != nil {
		return false, false, err
	}
	if live == v.Version {
		return created, false, tx.Commit()
	}
	var prev any
	if liveID != 0 {
		prev = liveID
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO config_activations (version, prev, kind, by, at) VALUES (?, ?, 'apply', ?, ?)`,
		v.Version, prev, by, now.Format(timeColumn)); err != nil {
		return false, false, fmt.Errorf("apply config: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, false, fmt.Errorf("apply config: commit: %w", err)
	}
	return created, true, nil
}

// RollbackConfig makes a version live again: to (a hash or a unique
// prefix), or with to empty the version that was live before the current
// one became live. Rolling back twice steps back twice, like undo. It
// returns the versions live before and after; from == target means target
// was already live and nothing changed.
func (s *Store) RollbackConfig(ctx context.Context, to, by string) (from, target string, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", "", fmt.Errorf("rollback config: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	liveID, live, err := liveTx(ctx, tx)
	if err != nil {
		return "", "", err
	}
	if liveID == 0 {
		return "", "", ErrNoLive
	}
	prev := any(liveID) // with --to, rolling back again returns here
	if to == "" {
		var p sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT prev FROM config_activations WHERE id = ?`, liveID).Scan(&p); err != nil {
			return "", "", fmt.Errorf("rollback config: %w", err)
		}
		if !p.Valid {
			return live, "", ErrNoPrevious
		}
		var pp sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT version, prev FROM config_activations WHERE id = ?`, p.Int64).Scan(&target, &pp); err != nil {
			return "", "", fmt.Errorf("rollback config: %w", err)
		}
		prev = nil
		if pp.Valid {
			prev = pp.Int64
		}
	} else {
		if target, err = resolveVersion(ctx, tx, to); err != nil {
			return live, "", err
		}
	}
	if target == live {
		return live, target, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO config_activations (version, prev, kind, by, at) VALUES (?, ?, 'rollback', ?, ?)`,
		target, prev, by, time.Now().UTC().Format(timeColumn)); err != nil {
		return "", "", fmt.Errorf("rollback config: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", "", fmt.Errorf("rollback config: commit: %w", err)
	}
	return live, target, nil
}

// LiveConfig returns the live version's hash, or "" when none was ever
// applied. It is one indexed read: servers call it every 500 ms.
func (s *Store) LiveConfig(ctx context.Context) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT version FROM config_activations ORDER BY id DESC LIMIT 1`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("live config: %w", err)
	}
	return v, nil
}

// ConfigVersion returns the version named by a hash or a unique prefix of
// one, with its files: ErrNotFound or ErrAmbiguous otherwise.
func (s *Store) ConfigVersion(ctx context.Context, prefix string) (*store.ConfigVersion, error) {
	v, err := resolveVersion(ctx, s.db, prefix)
	if err != nil {
		return nil, err
	}
	var cv store.ConfigVersion
	var files, created string
	if err := s.db.QueryRowContext(ctx, `SELECT version, files, author, message, created_at FROM config_versions WHERE version = ?`, v).
		Scan(&cv.Version, &files, &cv.Author, &cv.Message, &created); err != nil {
		return nil, fmt.Errorf("config version %s: %w", v, err)
	}
	if err := json.Unmarshal([]byte(files), &cv.Files); err != nil {
		return nil, fmt.Errorf("config version %s: files: %w", v, err)
	}
	cv.CreatedAt, _ = time.Parse(timeColumn, created)
	live, err := s.LiveConfig(ctx)
	if err != nil {
		return nil, err
	}
	cv.Live = live == cv.Version
	return &cv, nil
}

// ConfigVersions lists every stored version, newest first, without files.
func (s *Store) ConfigVersions(ctx context.Context) ([]store.ConfigVersion, error) {
	live, err := s.LiveConfig(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT version, author, message, created_at FROM config_versions ORDER BY created_at DESC, version`)
	if err != nil {
		return nil, fmt.Errorf("config versions: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanConfigVersions(rows, live)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func liveTx(ctx context.Context, q querier) (id int64, version string, err error) {
	err = q.QueryRowContext(ctx, `SELECT id, version FROM config_activations ORDER BY id DESC LIMIT 1`).Scan(&id, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("live config: %w", err)
	}
	return id, version, nil
}

// resolveVersion expands a hash prefix to the one stored version it names.
func resolveVersion(ctx context.Context, q querier, prefix string) (string, error) {
	prefix, err := sqlshared.VersionPrefix(prefix)
	if err != nil {
		return "", err
	}
	rows, err := q.QueryContext(ctx, `SELECT version FROM config_versions WHERE substr(version, 1, ?) = ? LIMIT 2`, len(prefix), prefix)
	if err != nil {
		return "", fmt.Errorf("config version: %w", err)
	}
	defer rows.Close()
	return sqlshared.OneVersion(prefix, rows)
}
