package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/app"
	mcpserver "github.com/warden-dev/warden/internal/mcp"
)

func runServe(e *env, args []string) int {
	fs := newFlags("serve", "serve [--config DIR] [--config-source auto|file|store] [--db PATH] [--addr HOST:PORT] [--dev] [--demo]")
	dir := configFlag(fs)
	source := fs.String("config-source", app.SourceAuto, "auto: the store's live version (warden apply) when there is one, else --config; file: --config only; store: the store's live version only")
	db := dbFlag(fs)
	key := auditKeyFlag(fs)
	addr := fs.String("addr", envOr("WARDEN_ADDR", app.DefaultAddr), "listen address (env WARDEN_ADDR)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	grace := fs.Duration("grace", 10*time.Second, "on SIGTERM/SIGINT, how long in-flight calls may take to finish")
	approvalTimeout := fs.Duration("approval-timeout", 15*time.Minute, "how long a call waits for a human before it expires")
	maxBody := fs.Int64("max-body", 1<<20, "request body limit in bytes")
	dev := fs.Bool("dev", false, "development mode: create and print an agent token for every agent")
	demo := fs.Bool("demo", false, "also start the quick start's demo upstream")
	demoAddr := fs.String("demo-addr", "127.0.0.1:7071", "where the demo upstream listens")
	metricsAddr := fs.String("metrics-addr", envOr("WARDEN_METRICS_ADDR", ""), "serve GET /metrics on this separate address instead of --addr (env WARDEN_METRICS_ADDR)")
	mcpWait := fs.Duration("mcp-wait", mcpserver.DefaultWait, "how long an MCP tools/call waits for a human approval before answering that the call is pending (0: do not wait)")
	masterKeyFile := masterKeyFlag(fs)
	pos, ok := parse(fs, args, e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(pos) > 0 {
		e.errorf("warden serve takes no arguments, got %q", pos[0])
		return exitBadArgs
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		e.errorf("--log-level must be debug, info, warn or error")
		return exitBadArgs
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch *logFormat {
	case "text":
		h = slog.NewTextHandler(e.stderr, hopts)
	case "json":
		h = slog.NewJSONHandler(e.stderr, hopts)
	default:
		e.errorf("--log-format must be text or json")
		return exitBadArgs
	}
	reload, stop := hangups()
	defer stop()
	err := app.Run(e.ctx, app.Options{
		ConfigDir: *dir, DB: *db, AuditKey: *key, Addr: *addr, Grace: *grace,
		ApprovalTimeout: *approvalTimeout, MaxBody: *maxBody,
		Dev: *dev, Demo: *demo, DemoAddr: *demoAddr,
		Logger: slog.New(h), Out: e.stdout, MasterKeyFile: *masterKeyFile, MetricsAddr: *metricsAddr,
		ConfigSource: *source, Reload: reload, MCPWait: *mcpWait,
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "warden serve: %v\n", err)
		return exitFailed
	}
	return exitOK
}

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}
