package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

// configLock serialises applies and rollbacks (the sqlite store gets the
// same from BEGIN IMMEDIATE), as a transaction-scoped advisory lock.
const configLock int64 = 0x77617264656e43 // "wardenC"

// ApplyConfig stores v unless a version with its hash exists and makes it
// live, in one transaction that tells every replica. It reports whether
// the version was new and whether it became live.
func (s *Store) ApplyConfig(ctx context.Context, v store.ConfigVersion, by string) (created, activated bool, err error) {
	files, err := json.Marshal(v.Files)
	if err != nil {
		return false, false, fmt.Errorf("apply config: %w", err)
	}
	now := time.Now().UTC()
	if v.CreatedAt.IsZero() {
		v.CreatedAt = now
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", configLock); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO config_versions (version, files, author, message, created_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version) DO NOTHING`,
			v.Version, string(files), v.Author, v.Message, v.CreatedAt.UTC().Format(timeColumn))
		if err != nil {
			return err
		}
		created = tag.RowsAffected() > 0
		liveID, live, err := liveTx(ctx, tx)
		if err != nil {
			return err
		}
		if live == v.Version {
			return nil
		}
		var prev any
		if liveID != 0 {
			prev = liveID
		}
		if _, err := tx.Exec(ctx, `INSERT INTO config_activations (version, prev, kind, "by", at) VALUES ($1, $2, 'apply', $3, $4)`,
			v.Version, prev, by, now.Format(timeColumn)); err != nil {
			return err
		}
		activated = true
		return notify(ctx, tx, store.EventConfig)
	})
	if err != nil {
		return false, false, fmt.Errorf("apply config: %w", err)
	}
	return created, activated, nil
}

// RollbackConfig makes a version live again: to (a hash or a unique
// prefix), or with to empty the version live before the current one. It
// returns the versions live before and after.
func (s *Store) RollbackConfig(ctx context.Context, to, by string) (from, target string, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", "", fmt.Errorf("rollback config: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", configLock); err != nil {
		return "", "", fmt.Errorf("rollback config: %w", err)
	}
	liveID, live, err := liveTx(ctx, tx)
	if err != nil {
		return "", "", err
	}
	if liveID == 0 {
		return "", "", store.ErrNoLive
	}
	prev := any(liveID)
	if to == "" {
		var p *int64
		if err := tx.QueryRow(ctx, `SELECT prev FROM config_activations WHERE id = $1`, liveID).Scan(&p); err != nil {
			return "", "", fmt.Errorf("rollback config: %w", err)
		}
		if p == nil {
			return live, "", store.ErrNoPrevious
		}
		var pp *int64
		if err := tx.QueryRow(ctx, `SELECT version, prev FROM config_activations WHERE id = $1`, *p).Scan(&target, &pp); err != nil {
			return "", "", fmt.Errorf("rollback config: %w", err)
		}
		prev = nil
		if pp != nil {
			prev = *pp
		}
	} else if target, err = resolveVersion(ctx, tx, to); err != nil {
		return live, "", err
	}
	if target == live {
		return live, target, nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO config_activations (version, prev, kind, "by", at) VALUES ($1, $2, 'rollback', $3, $4)`,
		target, prev, by, time.Now().UTC().Format(timeColumn)); err != nil {
		return "", "", fmt.Errorf("rollback config: %w", err)
	}
	if err := notify(ctx, tx, store.EventConfig); err != nil {
		return "", "", fmt.Errorf("rollback config: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", "", fmt.Errorf("rollback config: commit: %w", err)
	}
	return live, target, nil
}

// LiveConfig returns the live version's hash, or "" when none was ever
// applied.
func (s *Store) LiveConfig(ctx context.Context) (string, error) {
	_, v, err := liveTx(ctx, s.pool)
	return v, err
}

// LiveActivation returns how the live version became live, or nil.
func (s *Store) LiveActivation(ctx context.Context) (*store.Activation, error) {
	var a store.Activation
	var at string
	err := s.pool.QueryRow(ctx, `SELECT version, kind, "by", at FROM config_activations ORDER BY id DESC LIMIT 1`).
		Scan(&a.Version, &a.Kind, &a.By, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("live config: %w", err)
	}
	a.At, _ = time.Parse(timeColumn, at)
	return &a, nil
}

// ConfigVersion returns the version named by a hash or a unique prefix,
// with its files: ErrNotFound or ErrAmbiguous otherwise.
func (s *Store) ConfigVersion(ctx context.Context, prefix string) (*store.ConfigVersion, error) {
	v, err := resolveVersion(ctx, s.pool, prefix)
	if err != nil {
		return nil, err
	}
	var cv store.ConfigVersion
	var files, created string
	if err := s.pool.QueryRow(ctx, `SELECT version, files, author, message, created_at FROM config_versions WHERE version = $1`, v).
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
	rows, err := s.pool.Query(ctx, `SELECT version, author, message, created_at FROM config_versions ORDER BY created_at DESC, version`)
	if err != nil {
		return nil, fmt.Errorf("config versions: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanConfigVersions(rows, live)
}

func liveTx(ctx context.Context, q execer) (id int64, version string, err error) {
	err = q.QueryRow(ctx, `SELECT id, version FROM config_activations ORDER BY id DESC LIMIT 1`).Scan(&id, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("live config: %w", err)
	}
	return id, version, nil
}

func resolveVersion(ctx context.Context, q execer, prefix string) (string, error) {
	prefix, err := sqlshared.VersionPrefix(prefix)
	if err != nil {
		return "", err
	}
	rows, err := q.Query(ctx, `SELECT version FROM config_versions WHERE substr(version, 1, $1) = $2 LIMIT 2`, len(prefix), prefix)
	if err != nil {
		return "", fmt.Errorf("config version: %w", err)
	}
	defer rows.Close()
	return sqlshared.OneVersion(prefix, rows)
}
