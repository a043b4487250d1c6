package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/store"
)

// Config versions: apply, versions, diff, rollback. Each writes to or reads
// the store named by --db; running servers on that store pick up the live
// version within a second (internal/app/reload.go).

func authorFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("USER")
	if def == "" {
		def = "cli"
	}
	return fs.String("author", def, "who is doing this, for the version history and the audit trail (default $USER)")
}

func runApply(e *env, args []string) int {
	fs := newFlags("apply", "apply [--config DIR] [--author A] [--message M] [--db PATH]")
	dir := configFlag(fs)
	db := dbFlag(fs)
	author := authorFlag(fs)
	message := fs.String("message", "", "what this version changes and why")
	pos, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(pos) > 0 {
		e.errorf("warden apply: unexpected argument %q (use --config DIR)", pos[0])
		return exitBadArgs
	}
	files, err := config.ReadDir(*dir)
	if err != nil {
		printConfigError(e, err)
		return exitFailed
	}
	cfg, err := config.Parse(files)
	if err != nil {
		printConfigError(e, err)
		return exitFailed
	}
	stored := make(map[string]string, len(files))
	for _, f := range files {
		name, err := filepath.Rel(*dir, f.Name)
		if err != nil {
			name = f.Name
		}
		stored[filepath.ToSlash(name)] = string(f.Data)
	}
	st, ok := openStore(e, *db)
	if !ok {
		return exitFailed
	}
	defer st.Close()
	created, activated, err := st.ApplyConfig(e.ctx, store.ConfigVersion{
		Version: cfg.Version, Files: stored, Author: *author, Message: *message,
	}, *author)
	if err != nil {
		e.errorf("%v", err)
		return exitFailed
	}
	short := shortVersion(cfg.Version)
	if !activated {
		fmt.Fprintf(e.stdout, "version %s is already live\n", short)
		return exitOK
	}
	reason := fmt.Sprintf("config version %s applied by %s", short, *author)
	if !created {
		reason = fmt.Sprintf("config version %s (stored earlier) applied again by %s", short, *author)
	}
	if *message != "" {
		reason += ": " + *message
	}
	rec := &audit.Record{Time: time.Now().UTC(), Kind: "config_apply", Trigger: "cli:" + *author, Reason: reason, ConfigVersion: cfg.Version}
	if err := st.Append(e.ctx, rec); err != nil {
		e.errorf("version %s is live but could not be audited: %v", short, err)
		return exitFailed
	}
	fmt.Fprintln(e.stdout, reason)
	fmt.Fprintf(e.stdout, "live: %s\n", cfg.Version)
	fmt.Fprintln(e.stderr, "running servers on this store switch to it within a second")
	return exitOK
}

func runVersions(e *env, args []string) int {
	fs := newFlags("versions", "versions [--json] [--db PATH]")
	db := dbFlag(fs)
	asJSON := fs.Bool("json", false, "one JSON object per version")
	pos, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(pos) > 0 {
		e.errorf("warden versions takes no arguments, got %q", pos[0])
		return exitBadArgs
	}
	st, ok := openStore(e, *db)
	if !ok {
		return exitFailed
	}
	defer st.Close()
	vs, err := st.ConfigVersions(e.ctx)
	if err != nil {
		e.errorf("%v", err)
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, v := range vs {
			_ = enc.Encode(map[string]any{"version": v.Version, "live": v.Live, "author": v.Author,
				"message": v.Message, "created_at": v.CreatedAt.Format(time.RFC3339Nano)})
		}
		return exitOK
	}
	if len(vs) == 0 {
		fmt.Fprintln(e.stdout, "no config versions stored; warden apply --config DIR stores one")
		return exitOK
	}
	for _, v := range vs {
		live := " "
		if v.Live {
			live = "*"
		}
		fmt.Fprintf(e.stdout, "%s %s  %-12s  %s  %s\n", live, shortVersion(v.Version), v.Author,
			v.CreatedAt.Local().Format("2006-01-02 15:04:05"), v.Message)
	}
	return exitOK
}

func runDiff(e *env, args []string) int {
	fs := newFlags("diff", "diff V1 V2 [--db PATH]   (versions by hash or unique prefix)")
	db := dbFlag(fs)
	pos, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(pos) != 2 {
		e.errorf("warden diff takes two versions (hash or prefix; see warden versions)")
		return exitBadArgs
	}
	st, ok := openStore(e, *db)
	if !ok {
		return exitFailed
	}
	defer st.Close()
	var vs [2]*store.ConfigVersion
	for i, p := range pos {
		v, err := st.ConfigVersion(e.ctx, p)
		if err != nil {
			e.errorf("%v", err)
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAmbiguous) {
				return exitBadArgs
			}
			return exitFailed
		}
		vs[i] = v
	}
	for i, sign := range []string{"---", "+++"} {
		v := vs[i]
		fmt.Fprintf(e.stdout, "%s %s  %s  %s  %s\n", sign, shortVersion(v.Version), v.Author, v.CreatedAt.UTC().Format(time.RFC3339), v.Message)
	}
	d := config.Diff(app.ConfigFiles(vs[0]), app.ConfigFiles(vs[1]))
	if d == "" {
		fmt.Fprintln(e.stdout, "no document differs")
		return exitOK
	}
	fmt.Fprint(e.stdout, d)
	return exitOK
}

func runRollback(e *env, args []string) int {
	fs := newFlags("rollback", "rollback [--to V] [--author A] [--db PATH]")
	db := dbFlag(fs)
	to := fs.String("to", "", "the version to make live (hash or unique prefix); default: the one live before the current one")
	author := authorFlag(fs)
	pos, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(pos) > 0 {
		e.errorf("warden rollback: unexpected argument %q (use --to V)", pos[0])
		return exitBadArgs
	}
	st, ok := openStore(e, *db)
	if !ok {
		return exitFailed
	}
	defer st.Close()
	// The console's rollback button does the same (app.RollbackConfig).
	from, target, reason, err := app.RollbackConfig(e.ctx, st, *to, *author, "cli")
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrAmbiguous):
		e.errorf("%v", err)
		return exitBadArgs
	case err != nil:
		e.errorf("%v", err)
		return exitFailed
	case from == target:
		fmt.Fprintln(e.stdout, reason)
		return exitOK
	}
	fmt.Fprintln(e.stdout, reason)
	fmt.Fprintf(e.stdout, "live: %s\n", target)
	fmt.Fprintln(e.stderr, "running servers on this store switch to it within a second")
	return exitOK
}

func shortVersion(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return strings.TrimSpace(v)
}
