package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/warden-dev/warden/internal/store/sqlshared"
)

// Migrate applies the embedded migrations the database at path lacks
// (with dryRun, only lists them) and returns their names: `warden
// migrate`. Open does the same on every start.
func Migrate(ctx context.Context, path string, dryRun bool, logger *slog.Logger) ([]string, error) {
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
	defer db.Close()
	ms, err := sqlshared.LoadMigrations(migrationFiles)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := db.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err == nil {
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: %s: %w", file, err)
			}
			applied[v] = true
		}
		rows.Close()
	} // else: no table yet, nothing applied
	todo := sqlshared.PendingMigrations(ms, applied)
	if dryRun || len(todo) == 0 {
		return todo, nil
	}
	if err := applyMigrations(ctx, db, ms, logger); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", file, err)
	}
	return todo, nil
}
