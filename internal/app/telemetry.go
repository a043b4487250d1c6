package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/telemetry"
)

// observability builds the metrics (served at /metrics on the API
// listener, or on their own listener at metricsAddr) and the tracer
// provider (from the OTEL_* environment). stop flushes queued spans and
// closes the metrics listener; Run calls it after the last call finished
// and before the store closes.
func observability(ctx context.Context, metricsAddr string, store store.Store, log *slog.Logger) (
	m *telemetry.Metrics, tr *telemetry.Tracing, apiMetrics http.Handler, stop func(), err error,
) {
	m = telemetry.NewMetrics()
	m.WatchAuditQueue(store.QueueDepth)
	tr, err = telemetry.NewTracing(ctx, nil, "")
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("tracing: %w", err)
	}
	if tr.Enabled() {
		log.Info("exporting traces over OTLP/HTTP")
	}
	var ms *http.Server
	if metricsAddr == "" {
		apiMetrics = m.Handler()
	} else {
		ln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			_ = tr.Shutdown(ctx)
			return nil, nil, nil, nil, fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		ms = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := ms.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener", "err", err)
			}
		}()
		log.Info("metrics listening", "addr", ln.Addr().String())
	}
	stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if ms != nil {
			_ = ms.Shutdown(sctx)
		}
		if err := tr.Shutdown(sctx); err != nil {
			log.Warn("flushing traces", "err", err)
		}
	}
	return m, tr, apiMetrics, stop, nil
}
