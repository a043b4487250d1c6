package cli

import (
	"flag"
	"log/slog"
	"os"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/store"
)

// dbFlag registers --db with its default: $WARDEN_DB, else ./warden.db.
// Every command that touches the store takes it, so they all act on the
// store a running server uses.
func dbFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("WARDEN_DB")
	if def == "" {
		def = "warden.db"
	}
	return fs.String("db", def, "the store: a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB (env WARDEN_DB)")
}

// auditKeyFlag registers --audit-key: the checkpoint signing key, kept
// outside the database.
func auditKeyFlag(fs *flag.FlagSet) *string {
	return fs.String("audit-key", os.Getenv("WARDEN_AUDIT_KEY"), "audit checkpoint key file (env WARDEN_AUDIT_KEY; default: warden-audit.key beside a SQLite database; required with postgres)")
}

// openStore opens the store for a CLI command, without a checkpoint signer:
// only the server signs checkpoints.
func openStore(e *env, db string) (store.Store, bool) {
	st, err := app.OpenStore(e.ctx, db, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		e.errorf("cannot open the store %s: %v", app.RedactDB(db), err)
		return nil, false
	}
	// A running server under load must leave a SQLite command a window on
	// the write lock (withdrawn on Close).
	if a, ok := st.(interface{ Announce() func() }); ok {
		a.Announce()
	}
	return st, true
}
