// Package app is warden's composition root: it builds the components of
// `warden serve` in dependency order (logger, config, store, dispatcher,
// HTTP server) and stops them in reverse, the store — and with it the audit
// writer — last. Nothing else constructs concrete stores or connectors.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	mcpconn "github.com/warden-dev/warden/internal/connector/mcp"
	"github.com/warden-dev/warden/internal/demo"
	"github.com/warden-dev/warden/internal/dispatch"
	mcpserver "github.com/warden-dev/warden/internal/mcp"
	"github.com/warden-dev/warden/internal/secret"
	"github.com/warden-dev/warden/internal/server"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/postgres"
	"github.com/warden-dev/warden/internal/store/sqlite"
	"github.com/warden-dev/warden/internal/telemetry"
)

// Options configure `warden serve`.
type Options struct {
	ConfigDir       string
	DB              string // path or sqlite://PATH
	AuditKey        string // checkpoint signing key file; default: beside the database
	Addr            string // default 127.0.0.1:7070
	Grace           time.Duration
	ApprovalTimeout time.Duration
	MaxBody         int64
	Dev             bool   // print a ready agent token per agent
	Demo            bool   // start the quick start's demo upstream
	DemoAddr        string // default 127.0.0.1:7071
	Logger          *slog.Logger
	Out             io.Writer       // where dev-mode tokens are printed
	Ready           chan<- string   // receives the listen address once serving (tests)
	MasterKeyFile   string          // local:// master key file; default $WARDEN_MASTER_KEY
	ConfigSource    string          // SourceAuto (default), SourceFile or SourceStore; see reload.go
	MetricsAddr     string          // a separate listener for GET /metrics; "": on Addr (telemetry.go)
	Reload          <-chan struct{} // a receive reloads the config at once (SIGHUP; tests)
	ConfigPoll      time.Duration   // how often config files are checked for changes; default 1s, negative: never
	MCPWait         time.Duration   // how long an MCP tools/call waits for an approval (serve --mcp-wait); 0: no wait
}

// DefaultAddr is where `warden serve` listens by default.
const DefaultAddr = "127.0.0.1:7070"

// AuditKeyPath is the default checkpoint key file for a database path: a
// file beside the database, outside it.
func AuditKeyPath(db string) string {
	if postgres.IsURL(db) {
		return "" // no default: every replica must name the one shared key (docs/scale-out.md)
	}
	p := strings.TrimPrefix(db, "sqlite://")
	return filepath.Join(filepath.Dir(p), "warden-audit.key")
}

// OpenStore opens the store a --db value names. Every command that touches
// the store uses it, so they all act on what a running server uses.
func OpenStore(ctx context.Context, db string, logger *slog.Logger, signer *audit.Signer) (store.Store, error) {
	if postgres.IsURL(db) {
		return postgres.Open(ctx, db, logger, postgres.Options{Signer: signer})
	}
	if db == "" {
		return nil, errors.New("--db is empty")
	}
	return sqlite.Open(ctx, db, logger, sqlite.Options{Signer: signer})
}

// RedactDB is a --db value fit for logs and messages: a postgres URL
// without its passwords; a sqlite path as it is (postgres.Redact would
// read it as a key=value connection string).
func RedactDB(db string) string {
	if postgres.IsURL(db) {
		return postgres.Redact(db)
	}
	return db
}

// Run serves until ctx ends, then shuts down gracefully: it stops accepting,
// lets in-flight calls finish within the grace period, flushes the audit
// log and returns nil.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// One redactor for every outbound path: responses, errors, audit
	// records and these logs.
	redactor := secret.NewRedactor()
	log = slog.New(redactor.LogHandler(log.Handler()))
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Grace <= 0 {
		o.Grace = 10 * time.Second
	}
	if o.AuditKey == "" {
		o.AuditKey = AuditKeyPath(o.DB)
	}
	if o.AuditKey == "" {
		return errors.New("audit key: --audit-key (or WARDEN_AUDIT_KEY) is required with a postgres store: every replica signs checkpoints with the same key file")
	}

	signer, err := audit.LoadOrCreateKey(o.AuditKey)
	if err != nil {
		return fmt.Errorf("audit key: %w", err)
	}
	store, err := OpenStore(ctx, o.DB, log, signer)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()
	if err := sameAuditKey(ctx, store, signer, o.AuditKey); err != nil {
		return err
	}

	// The config: the store's live version or the files (reload.go).
	reload, err := newReloader(o, store, log)
	if err != nil {
		return err
	}
	cfg, err := reload.initial(ctx)
	if err != nil {
		return err
	}
	sec, localSecrets, err := newSecrets(o.MasterKeyFile, redactor, cfg, log)
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	// Upstream MCP servers (mcp connectors) outlive config versions; they
	// stop after the last execution (WaitIdle), before the store closes.
	upstreams := mcpconn.NewPool(log)
	defer upstreams.Close()
	snap, err := snapshot(cfg, sec, upstreams, store)
	if err != nil {
		return err
	}

	localSecrets.Store = store // before any call can resolve a local:// secret
	kills := &killCache{Store: store, lookup: newFresh[[2]string, *dispatch.Kill](time.Now)}
	tokens := &tokenCache{next: authenticator{store}, lookup: newFresh[string, call.Principal](time.Now)}
	notifier, slackOpts := approvalChannels(cfg, sec, store, log) // notify.go
	alerts := alerting(cfg, sec, store, log)                      // alerts.go; nil: no rules

	// Metrics and traces (telemetry.go).
	metrics, tracing, apiMetrics, stopTelemetry, err := observability(ctx, o.MetricsAddr, store, log)
	if err != nil {
		return err
	}
	defer stopTelemetry() // after the last call, before the store closes
	d := dispatch.New(dispatch.Options{Store: kills, Approvals: store, Logger: log, ApprovalTimeout: o.ApprovalTimeout, Redactor: redactor, Notifier: notifier,
		Observer: observe(metrics, alerts), Tracer: tracing.Tracer(), Usage: store}, snap)
	mcpSrv := mcpserver.New(mcpserver.Options{Dispatcher: d, Wait: o.MCPWait, Logger: log, MaxBody: o.MaxBody})
	srv := server.New(server.Options{
		Metrics:    apiMetrics,
		Propagator: telemetry.Propagator,
		Dispatcher: d,
		Auth:       tokens,
		Audit:      auditReader{store},
		Ready:      store.Ping,
		Logger:     log,
		MaxBody:    o.MaxBody,
		Slack:      slackOpts,
		Operations: operations{store}, // the console's admin pages (console_ops.go)
		MCP:        mcpSrv,            // POST /mcp
	})

	var demoLn net.Listener
	if o.Demo {
		addr := o.DemoAddr
		if addr == "" {
			addr = "127.0.0.1:7071"
		}
		if demoLn, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("demo upstream: %w", err)
		}
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		if demoLn != nil {
			demoLn.Close()
		}
		return fmt.Errorf("listen: %w", err)
	}

	if o.Dev {
		if err := printDevTokens(ctx, o.Out, store, cfg, ln.Addr().String()); err != nil {
			ln.Close()
			return err
		}
	}

	var wg sync.WaitGroup
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	wg.Add(1)
	go func() { defer wg.Done(); notifier.Run(bg) }() // Slack and webhook deliveries (nil: none)
	wg.Add(1)
	go func() { defer wg.Done(); alerts.Run(bg) }() // alert rules every 15 s (nil: none)
	reload.d, reload.sec, reload.mcp = d, sec, upstreams
	wg.Add(1)
	go func() { defer wg.Done(); reload.run(bg, o.Reload) }() // live config versions, file changes, SIGHUP
	sweep := make(chan struct{}, 1)
	wg.Add(1)
	go func() { // changes made by other replicas, at once (events.go)
		defer wg.Done()
		propagate(bg, store, propagation{d: d, kills: kills, tokens: tokens, reload: reload, sweep: sweep, log: log})
	}()
	wg.Add(1)
	go func() { // expire approvals nobody gave in time; close interrupted calls
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				if n, err := d.ExpireDue(bg); err != nil {
					log.Error("expiring pending calls", "err", err)
				} else if n > 0 {
					log.Info("expired pending calls", "count", n)
				}
				if n, err := d.ReapInterrupted(bg); err != nil {
					log.Error("closing interrupted calls", "err", err)
				} else if n > 0 {
					log.Warn("closed calls interrupted before their outcome was recorded", "count", n)
				}
			}
		}
	}()
	wg.Add(1)
	go func() { // cancel killed agents' waiting calls; run calls approved elsewhere (the CLI) or left approved by a restart
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			// Every 250 ms, so that a kill cancels waiting approvals within
			// a second (a kill is read from the store, not the 500 ms cache).
			if n, err := d.CancelKilled(bg); err != nil && bg.Err() == nil { // kill.go
				log.Error("cancelling killed agents' pending calls", "err", err)
			} else if n > 0 {
				log.Info("cancelled killed agents' pending calls", "count", n)
			}
			if n, err := d.StopKilled(bg); err != nil && bg.Err() == nil {
				log.Error("stopping killed agents' executions", "err", err)
			} else if n > 0 {
				log.Warn("stopped executions of killed agents", "count", n)
			}
			if n, err := d.ExecuteApproved(bg); err != nil && bg.Err() == nil {
				log.Error("running approved calls", "err", err)
			} else if n > 0 {
				log.Info("ran approved calls", "count", n)
			}
			select {
			case <-bg.Done():
				return
			case <-t.C:
			case <-sweep: // a kill or an approval on another replica (events.go)
			}
		}
	}()

	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(srv.Drain) // long polls answer at once instead of holding shutdown
	hs.RegisterOnShutdown(mcpSrv.Drain)
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	var demoSrv *http.Server
	if demoLn != nil {
		demoSrv = &http.Server{Handler: demo.New().Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- demoSrv.Serve(demoLn) }()
		log.Info("demo upstream listening", "addr", demoLn.Addr().String())
	}
	log.Info("warden serving", "addr", ln.Addr().String(), "config_version", cfg.Version, "db", RedactDB(o.DB))
	if o.Ready != nil {
		o.Ready <- ln.Addr().String()
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	log.Info("shutting down", "grace", o.Grace)
	sctx, cancel := context.WithTimeout(context.Background(), o.Grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("in-flight requests did not finish within the grace period", "err", err)
	}
	if demoSrv != nil {
		_ = demoSrv.Shutdown(sctx)
	}
	// Executions outlive their requests (the outcome must be recorded even
	// if the client went away); give them up to the execution timeout.
	ictx, icancel := context.WithTimeout(context.Background(), 60*time.Second)
	if err := srv.WaitBackground(ictx); err != nil { // Slack clicks answered before their call ran
		log.Error("slack follow-ups still running at shutdown", "err", err)
	}
	if err := d.WaitIdle(ictx); err != nil {
		log.Error("executions still running at shutdown; their outcomes will be missing from the audit trail", "err", err)
	}
	icancel()
	stopBG()
	wg.Wait()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// printDevTokens creates and prints one agent token per configured agent.
func printDevTokens(ctx context.Context, w io.Writer, store store.Store, cfg *config.Config, addr string) error {
	if w == nil {
		w = os.Stdout
	}
	fmt.Fprintf(w, "dev mode: warden at http://%s (config %s)\n", addr, cfg.Version[:12])
	for _, a := range cfg.Agents {
		tok, _, err := store.CreateToken(ctx, call.Principal{Role: call.RoleAgent, Tenant: a.Tenant, Agent: a.Name, Name: "dev"})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "agent %s/%s token: %s\n", a.Tenant, a.Name, tok)
		fmt.Fprintf(w, "  export WARDEN_TOKEN=%s\n", tok)
	}
	tok, _, err := store.CreateToken(ctx, call.Principal{Role: call.RoleApprover, Name: "dev-approver"})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "approver dev-approver token (every tenant): %s\n", tok)
	fmt.Fprintf(w, "  export WARDEN_APPROVER_TOKEN=%s\n", tok)
	return nil
}

type authenticator struct{ s store.Store }

func (a authenticator) Authenticate(ctx context.Context, token string) (call.Principal, error) {
	p, err := a.s.Authenticate(ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		return p, server.ErrBadToken
	}
	return p, err
}

type auditReader struct{ s store.Store }

func (a auditReader) QueryAudit(ctx context.Context, q server.AuditQuery) ([]*audit.Record, error) {
	return a.s.AuditRecords(ctx, store.AuditFilter{
		Tenant: q.Tenant, Agent: q.Agent, Decision: q.Decision,
		Since: q.Since, Until: q.Until, AfterSeq: q.AfterSeq, Limit: q.Limit,
	})
}

// sameAuditKey refuses to serve with a checkpoint key other than the one
// that signed the chain's latest checkpoint: its checkpoints would fail
// `warden audit verify`. It catches a replica started without the shared
// key file (which would create a key of its own) and a key file lost or
// swapped beside a SQLite database.
func sameAuditKey(ctx context.Context, st store.Store, signer *audit.Signer, path string) error {
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return fmt.Errorf("store: reading audit checkpoints: %w", err)
	}
	if len(cps) == 0 {
		return nil
	}
	if last := cps[len(cps)-1]; last.KeyID != signer.KeyID() {
		return fmt.Errorf("audit key: %s has key id %s, but the audit chain's checkpoints are signed with key id %s; "+
			"start with the key file that signed them (--audit-key, or WARDEN_AUDIT_KEY)", path, signer.KeyID(), last.KeyID)
	}
	return nil
}
