package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/config"
	mcpconn "github.com/warden-dev/warden/internal/connector/mcp"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/secret"
	"github.com/warden-dev/warden/internal/store"
)

// Where `warden serve` takes its config from (Options.ConfigSource).
//
// With SourceAuto (the default) the store's live version wins whenever
// there is one: a server started on files switches to the store as soon as
// someone runs `warden apply` against it, and from then on ignores the
// files. SourceFile serves the files only and never looks at the store's
// versions; SourceStore refuses to start until a version was applied.
const (
	SourceAuto  = "auto"
	SourceFile  = "file"
	SourceStore = "store"
)

// How often a server looks for a new live version in the store (one
// indexed read) and for changed config files (read and hashed: config
// directories are small).
const (
	storePollEvery = 500 * time.Millisecond
	filePollEvery  = time.Second
)

// ConfigFiles turns a stored version's files into config files in name
// order, the order `warden apply` read them in.
func ConfigFiles(v *store.ConfigVersion) []config.File {
	names := make([]string, 0, len(v.Files))
	for n := range v.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]config.File, 0, len(names))
	for _, n := range names {
		out = append(out, config.File{Name: n, Data: []byte(v.Files[n])})
	}
	return out
}

// reloader keeps the dispatcher's snapshot on the config that should be
// live: the store's live version, or the files (file mode). A version that
// does not load or build is logged and the running one stays. Reloads are
// serialised by mu; the dispatcher's Swap lets calls in flight finish under
// the snapshot they started with.
type reloader struct {
	log    *slog.Logger
	store  store.Store
	sec    *secret.Resolver
	dir    string
	source string
	every  time.Duration        // file poll interval; negative: never
	d      *dispatch.Dispatcher // set once the dispatcher exists, before run
	mcp    *mcpconn.Pool        // upstream MCP sessions, shared by every snapshot

	mu        sync.Mutex
	live      string // the version being served
	fromStore bool   // live came from the store (then the files are ignored)
	failed    string // a store version that failed to build: not retried
	filesSum  string // digest of the files last read: a change is read once
	storeErr  bool   // a store poll failed: logged once until it recovers
}

func newReloader(o Options, store store.Store, log *slog.Logger) (*reloader, error) {
	src := o.ConfigSource
	if src == "" {
		src = SourceAuto
	}
	if src != SourceAuto && src != SourceFile && src != SourceStore {
		return nil, fmt.Errorf("config source %q: want auto, file or store", src)
	}
	every := o.ConfigPoll
	if every == 0 {
		every = filePollEvery
	}
	return &reloader{log: log, store: store, dir: o.ConfigDir, source: src, every: every}, nil
}

// initial loads the config to start with.
func (r *reloader) initial(ctx context.Context) (*config.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.source != SourceFile {
		live, err := r.store.LiveConfig(ctx)
		if err != nil {
			return nil, err
		}
		if live != "" {
			cfg, err := r.loadStored(ctx, live)
			if err != nil {
				return nil, fmt.Errorf("the store's live config version %s: %w", short(live), err)
			}
			r.live, r.fromStore = cfg.Version, true
			r.log.Info("serving the store's live config version; --config is ignored (--config-source file serves the files)",
				"config_version", cfg.Version, "config_dir", r.dir)
			return cfg, nil
		}
		if r.source == SourceStore {
			return nil, errors.New("the store has no live config version: run warden apply first, or use --config-source auto|file")
		}
	}
	files, err := config.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("config %s:\n%w", r.dir, err)
	}
	cfg, err := config.Parse(files)
	if err != nil {
		return nil, fmt.Errorf("config %s:\n%w", r.dir, err)
	}
	r.live, r.filesSum = cfg.Version, digest(files)
	return cfg, nil
}

// loadStored parses a stored version. The records it decides name the
// stored hash, so that every audit record points at a row of
// config_versions even if a newer warden hashes the same config
// differently.
func (r *reloader) loadStored(ctx context.Context, version string) (*config.Config, error) {
	cv, err := r.store.ConfigVersion(ctx, version)
	if err != nil {
		return nil, err
	}
	return r.parseStored(cv)
}

// parseStored builds a stored version's config.
func (r *reloader) parseStored(cv *store.ConfigVersion) (*config.Config, error) {
	cfg, err := config.Parse(ConfigFiles(cv))
	if err != nil {
		return nil, err
	}
	if cfg.Version != cv.Version {
		r.log.Warn("a stored config version hashes differently under this warden; its records keep the stored hash",
			"config_version", cv.Version, "hash_now", cfg.Version)
		cfg.Version = cv.Version
	}
	return cfg, nil
}

// run polls the store and the files until ctx ends; a receive on trigger
// (SIGHUP, or a test) reloads at once.
func (r *reloader) run(ctx context.Context, trigger <-chan struct{}) {
	st := time.NewTicker(storePollEvery)
	defer st.Stop()
	var files <-chan time.Time // nil: never
	if r.every > 0 {
		ft := time.NewTicker(r.every)
		defer ft.Stop()
		files = ft.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.C:
			r.pollStore(ctx)
		case <-files:
			r.pollFiles(false)
		case <-trigger:
			r.log.Info("reloading the config", "source", r.source)
			r.pollStore(ctx)
			r.pollFiles(true)
		}
	}
}

func (r *reloader) pollStore(ctx context.Context) {
	if r.source == SourceFile {
		return
	}
	live, err := r.store.LiveConfig(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if !r.storeErr && ctx.Err() == nil {
			r.log.Error("reading the live config version; the running version stays", "err", err)
		}
		r.storeErr = true
		return
	}
	r.storeErr = false
	if live == "" || live == r.failed || (live == r.live && r.fromStore) {
		return
	}
	// Only a version that does not build is refused for good; one the
	// store could not hand over is tried again at the next poll.
	cv, err := r.store.ConfigVersion(ctx, live)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("reading the live config version; the running version stays", "config_version", live, "err", err)
		}
		return
	}
	cfg, err := r.parseStored(cv)
	if err == nil {
		err = r.swap(cfg, "store")
	}
	if err != nil {
		r.failed = live
		r.log.Error("config version refused; the running version stays",
			"config_version", live, "running", r.live, "err", err)
		return
	}
	if !r.fromStore {
		r.log.Warn("the store has a live config version now: serving it, and ignoring changes to the config files",
			"config_version", live, "config_dir", r.dir)
	}
	r.fromStore, r.failed = true, ""
}

// pollFiles reloads the files when they changed, or always when forced.
func (r *reloader) pollFiles(force bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.source == SourceStore || r.fromStore {
		return
	}
	files, err := config.ReadDir(r.dir)
	sum := digest(files)
	if err != nil {
		sum = "error: " + err.Error()
	}
	if sum == r.filesSum && !force {
		return
	}
	r.filesSum = sum
	if err == nil {
		var cfg *config.Config
		if cfg, err = config.Parse(files); err == nil {
			if cfg.Version == r.live {
				r.log.Info("config files re-read; the version is unchanged", "config_version", r.live)
				return
			}
			err = r.swap(cfg, "files")
		}
	}
	if err != nil {
		attrs := []any{"config_dir", r.dir, "running", r.live}
		var errs config.Errors
		if errors.As(err, &errs) {
			msgs := make([]string, len(errs))
			for i, e := range errs {
				msgs[i] = e.Error()
			}
			attrs = append(attrs, "errors", msgs)
		} else {
			attrs = append(attrs, "err", err)
		}
		r.log.Error("config refused; the running version stays", attrs...)
	}
}

// swap builds cfg's snapshot and makes it live. Called with mu held.
func (r *reloader) swap(cfg *config.Config, from string) error {
	snap, err := snapshot(cfg, r.sec, r.mcp, r.store)
	if err != nil {
		return err
	}
	prev := r.live
	r.d.Swap(snap)
	r.mcp.Retain(mcpUpstreams(snap)) // upstreams of removed or changed mcp connectors stop once idle
	r.live = cfg.Version
	r.log.Info("config version live", "config_version", cfg.Version, "previous", prev, "from", from)
	return nil
}

// digest identifies a set of config files by names and contents.
func digest(files []config.File) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%d:%s%d:", len(f.Name), f.Name, len(f.Data))
		h.Write(f.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func short(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}
