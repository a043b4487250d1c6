// Package telemetry is how operators see warden from outside: Prometheus
// metrics (Metrics, which implements dispatch.Observer) and OpenTelemetry
// tracing (Tracing, configured from the standard OTEL_* variables). The
// request path knows only the dispatch.Observer interface and a
// trace.Tracer; registries, exporters and their configuration live here.
package telemetry

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
)

var _ dispatch.Observer = (*Metrics)(nil)

// Metrics holds warden's metrics in their own registry (not Prometheus's
// global default). Every label value is a name from the config
// (dispatch.Labels: agent, connector, action, or "_unknown"), a decision,
// an outcome or an approval result: bounded, never an id, an argument or
// a secret.
type Metrics struct {
	reg *prometheus.Registry

	calls           *prometheus.CounterVec
	decisionLatency *prometheus.HistogramVec
	callLatency     *prometheus.HistogramVec
	approvals       *prometheus.CounterVec
	approvalWait    *prometheus.HistogramVec
	connectorErrors *prometheus.CounterVec
	secretFailures  *prometheus.CounterVec
	auditLatency    prometheus.Histogram
	auditErrors     prometheus.Counter
	reportedTokens  *prometheus.CounterVec
	reportedCostUSD *prometheus.CounterVec
}

// NewMetrics returns the metrics with the Go runtime and process
// collectors registered beside them.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_calls_total",
			Help: "Calls that reached their final outcome (succeeded, failed, refused, expired; decided for decide-only calls).",
		}, []string{"agent", "connector", "action", "decision", "outcome"}),
		decisionLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_decision_duration_seconds",
			Help:    "Time to decide a call: kill switch and policy.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
		}, []string{"decision"}),
		callLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_call_duration_seconds",
			Help:    "End-to-end time warden spent on a call, from request to final outcome recorded; a human's wait is not included, expired calls are not observed.",
			Buckets: prometheus.DefBuckets,
		}, []string{"connector", "outcome"}),
		approvals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_approvals_total",
			Help: "Approval requests by result: requested, granted, denied, expired.",
		}, []string{"agent", "connector", "result"}),
		approvalWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_approval_wait_seconds",
			Help:    "Time from an approval request to its resolution.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600},
		}, []string{"result"}),
		connectorErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_connector_errors_total",
			Help: "Executions the connector reported as failed (upstream errors, timeouts, unresolvable credentials).",
		}, []string{"connector", "action"}),
		secretFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_secret_resolution_failures_total",
			Help: "Executions that failed because a credential could not be resolved.",
		}, []string{"connector"}),
		auditLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "warden_audit_append_duration_seconds",
			Help:    "Time to append an audit record with its call state, group commit and fsync included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_audit_append_errors_total",
			Help: "Audit appends that failed (the call was refused or its outcome is missing).",
		}),
		reportedTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_reported_tokens_total",
			Help: "Model tokens reported by decide-only runtimes with their outcomes.",
		}, []string{"agent"}),
		reportedCostUSD: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_reported_cost_usd_total",
			Help: "Cost in US dollars reported by decide-only runtimes with their outcomes.",
		}, []string{"agent"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.calls, m.decisionLatency, m.callLatency, m.approvals, m.approvalWait,
		m.connectorErrors, m.secretFailures, m.auditLatency, m.auditErrors,
		m.reportedTokens, m.reportedCostUSD,
	)
	return m
}

// WatchAuditQueue exports depth (the store's QueueDepth) as
// warden_audit_queue_depth. Call it once.
func (m *Metrics) WatchAuditQueue(depth func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "warden_audit_queue_depth",
		Help: "Audit appends waiting for their commit.",
	}, func() float64 { return float64(depth()) }))
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry returns the registry, for tests and further collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Decided implements dispatch.Observer.
func (m *Metrics) Decided(_ dispatch.Labels, d call.Decision, latency time.Duration) {
	m.decisionLatency.WithLabelValues(string(d)).Observe(latency.Seconds())
}

// Finished implements dispatch.Observer.
func (m *Metrics) Finished(l dispatch.Labels, d call.Decision, outcome string, elapsed time.Duration) {
	m.calls.WithLabelValues(l.Agent, l.Connector, l.Action, string(d), outcome).Inc()
	if outcome != dispatch.StatusExpired && elapsed > 0 {
		m.callLatency.WithLabelValues(l.Connector, outcome).Observe(elapsed.Seconds())
	}
}

// ApprovalRequested implements dispatch.Observer.
func (m *Metrics) ApprovalRequested(l dispatch.Labels) {
	m.approvals.WithLabelValues(l.Agent, l.Connector, "requested").Inc()
}

// ApprovalResolved implements dispatch.Observer.
func (m *Metrics) ApprovalResolved(l dispatch.Labels, result string, wait time.Duration) {
	m.approvals.WithLabelValues(l.Agent, l.Connector, result).Inc()
	m.approvalWait.WithLabelValues(result).Observe(wait.Seconds())
}

// ConnectorFailed implements dispatch.Observer.
func (m *Metrics) ConnectorFailed(l dispatch.Labels) {
	m.connectorErrors.WithLabelValues(l.Connector, l.Action).Inc()
}

// SecretFailed implements dispatch.Observer.
func (m *Metrics) SecretFailed(connector string) {
	m.secretFailures.WithLabelValues(connector).Inc()
}

// AuditAppended implements dispatch.Observer.
func (m *Metrics) AuditAppended(latency time.Duration, err error) {
	m.auditLatency.Observe(latency.Seconds())
	if err != nil {
		m.auditErrors.Inc()
	}
}

// Reported implements dispatch.Observer.
func (m *Metrics) Reported(l dispatch.Labels, tokens int64, costUSD float64) {
	if tokens > 0 {
		m.reportedTokens.WithLabelValues(l.Agent).Add(float64(tokens))
	}
	if costUSD > 0 {
		m.reportedCostUSD.WithLabelValues(l.Agent).Add(costUSD)
	}
}
