package cli

import (
	"fmt"
	"log/slog"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/store/postgres"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// warden migrate [--dry-run] [--db URL]
//
// Applies the store's pending schema migrations, or with --dry-run lists
// them. `warden serve` applies them on start too (under an advisory lock
// on postgres, so replicas starting together are safe); this is for
// operators who apply schema changes by hand before a rollout.
func runMigrate(e *env, args []string) int {
	fs := newFlags("migrate", "migrate [--dry-run] [--db PATH|URL]")
	db := dbFlag(fs)
	dryRun := fs.Bool("dry-run", false, "list the pending migrations without applying them")
	pos, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(pos) != 0 {
		e.errorf("migrate takes no arguments")
		return exitBadArgs
	}
	if *db == "" {
		e.errorf("--db is empty")
		return exitBadArgs
	}
	migrate := sqlite.Migrate
	if postgres.IsURL(*db) {
		migrate = postgres.Migrate
	}
	names, err := migrate(e.ctx, *db, *dryRun, slog.New(slog.DiscardHandler))
	if err != nil {
		e.errorf("migrate: %v", err)
		return exitFailed
	}
	verb := "applied"
	if *dryRun {
		verb = "pending"
	}
	if len(names) == 0 {
		fmt.Fprintf(e.stdout, "%s: schema up to date\n", app.RedactDB(*db))
		return exitOK
	}
	for _, n := range names {
		fmt.Fprintf(e.stdout, "%s %s\n", verb, n)
	}
	return exitOK
}
