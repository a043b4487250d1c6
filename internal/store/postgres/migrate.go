package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warden-dev/warden/internal/store/sqlshared"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration = sqlshared.Migration

// Migrate applies the embedded migrations the database at db lacks (with
// dryRun, only lists them) and returns their names: `warden migrate`.
// Open does the same on every start; this is for operators who apply
// schema changes by hand before rolling out replicas.
func Migrate(ctx context.Context, db string, dryRun bool, logger *slog.Logger) ([]string, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := parseConfig(db, Options{}.withDefaults())
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", Redact(db), err)
	}
	defer pool.Close()
	names, err := migrate(ctx, pool, dryRun, logger)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", Redact(db), err)
	}
	return names, nil
}

// migrate applies (or with dryRun lists) the pending migrations, all in
// one transaction, holding a session-level advisory lock so that replicas
// starting together apply them once: the others wait, then find nothing
// to do.
func migrate(ctx context.Context, pool *pgxpool.Pool, dryRun bool, logger *slog.Logger) ([]string, error) {
	ms, err := sqlshared.LoadMigrations(migrationFiles)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLock); err != nil {
		return nil, fmt.Errorf("migrate: advisory lock: %w", err)
	}
	defer func() {
		// A lost connection drops the lock with it.
		if _, err := conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrateLock); err != nil {
			conn.Conn().Close(context.Background()) //nolint:errcheck // closing releases the lock
		}
	}()

	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when the
	// table exists, which the application role lacks (docs/scale-out.md):
	// look first.
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if !exists && !dryRun {
		if _, err := tx.Exec(ctx, `CREATE TABLE schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TEXT NOT NULL)`); err != nil {
			return nil, fmt.Errorf("migrate: %w", ownerNeeded(len(ms), err))
		}
	}
	applied := map[int]bool{}
	newest := 0
	if exists {
		rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, fmt.Errorf("migrate: %w", err)
			}
			applied[v] = true
			newest = max(newest, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	if known := ms[len(ms)-1].Version; newest > known {
		return nil, fmt.Errorf("database schema version %d is newer than this warden knows (%d): upgrade warden", newest, known)
	}
	if n := len(sqlshared.PendingMigrations(ms, applied)); n > 0 && !dryRun {
		// Only the owner role can apply migrations: say so plainly to an
		// application role (no CREATE on the schema) that finds some.
		var canCreate bool
		if err := tx.QueryRow(ctx, "SELECT coalesce(has_schema_privilege(current_schema(), 'CREATE'), false)").Scan(&canCreate); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		if !canCreate {
			return nil, ownerNeeded(n, errNoCreate)
		}
	}
	var todo []string
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		todo = append(todo, m.Name)
		if dryRun {
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return nil, fmt.Errorf("migration %s: %w", m.Name, ownerNeeded(len(sqlshared.PendingMigrations(ms, applied)), err))
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
			m.Version, m.Name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return nil, fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	if dryRun || len(todo) == 0 {
		return todo, nil
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("migrate: commit: %w", err)
	}
	logger.Info("postgres schema migrated", "applied", todo)
	return todo, nil
}

var errNoCreate = errors.New("no CREATE privilege on the schema")

// ownerNeeded explains a privilege error met while migrating: the role
// in the URL is not the one that owns the schema.
func ownerNeeded(n int, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code != "42501" { // insufficient_privilege
		return err
	}
	if !errors.As(err, &pgErr) && !errors.Is(err, errNoCreate) {
		return err
	}
	s := "s"
	if n == 1 {
		s = ""
	}
	return fmt.Errorf("%d migration%s pending and this role may not apply them; apply them with `warden migrate` as the owner role (docs/scale-out.md): %w", n, s, err)
}
