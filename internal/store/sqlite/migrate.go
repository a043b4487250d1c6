package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"
	"time"

	"github.com/warden-dev/warden/internal/store/sqlshared"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration = sqlshared.Migration

// migrate applies the embedded migrations the database lacks, all in one
// transaction. The transaction begins IMMEDIATE, so when two processes open
// a new file at once the second waits for the first and then finds nothing
// left to do.
func migrate(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	ms, err := sqlshared.LoadMigrations(migrationFiles)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return applyMigrations(ctx, db, ms, logger)
}

func applyMigrations(ctx context.Context, db *sql.DB, ms []migration, logger *slog.Logger) error {
	// Up to date (the common case: a CLI command beside a running server):
	// no write lock needed, so a busy server cannot starve the opener.
	if upToDate(ctx, db, ms) {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	applied := map[int]bool{}
	newest := 0
	rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrate: %w", err)
		}
		applied[v] = true
		newest = max(newest, v)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if known := ms[len(ms)-1].Version; newest > known {
		return fmt.Errorf("database schema version %d is newer than this warden knows (%d): upgrade warden", newest, known)
	}

	var done []string
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.Version, m.Name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		done = append(done, m.Name)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	if len(done) > 0 {
		logger.Info("sqlite schema migrated", "applied", done)
	}
	return nil
}

// upToDate reports, with a read only, whether every migration is applied.
// Any doubt (no table yet, an error) says no, and the caller takes the
// write lock and looks properly.
func upToDate(ctx context.Context, db *sql.DB, ms []migration) bool {
	var n, newest int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&n, &newest)
	return err == nil && n == len(ms) && newest == ms[len(ms)-1].Version
}
