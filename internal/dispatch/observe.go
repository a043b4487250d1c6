package dispatch

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
)

// Observer is told what happens to calls, for metrics. Implementations
// must be cheap and must not block: they run on the request path.
// internal/telemetry implements it with Prometheus; dispatch knows nothing
// of Prometheus.
type Observer interface {
	// Decided: a policy decision was made, in latency.
	Decided(l Labels, d call.Decision, latency time.Duration)
	// Finished: a call reached its final outcome (succeeded, failed,
	// refused, expired, or decided for a decide-only call). elapsed is the
	// time warden spent on it in the request or sweep that finished it; a
	// human's wait is not in it.
	Finished(l Labels, d call.Decision, outcome string, elapsed time.Duration)
	// ApprovalRequested: a call now waits for a human.
	ApprovalRequested(l Labels)
	// ApprovalResolved: an approval request was granted, denied or expired
	// after wait.
	ApprovalResolved(l Labels, result string, wait time.Duration)
	// ConnectorFailed: a connector reported a failure or returned an error.
	ConnectorFailed(l Labels)
	// SecretFailed: a credential of connector could not be resolved.
	SecretFailed(connector string)
	// AuditAppended: an audit record (with its call state) was committed,
	// or failed to be (err), in latency.
	AuditAppended(latency time.Duration, err error)
	// Reported: a decide-only runtime reported tokens and cost.
	Reported(l Labels, tokens int64, costUSD float64)
}

// Approval results, as Observer.ApprovalResolved reports them.
const (
	ApprovalGranted = "granted"
	ApprovalDenied  = "denied"
	ApprovalExpired = "expired"
)

// Unknown stands in Labels for a name the config does not know.
const Unknown = "_unknown"

// Labels name a call for metrics: agent, connector and action names the
// config of the current snapshot knows, Unknown otherwise. They never
// carry ids, args or any other value a caller chooses freely, so their
// cardinality is bounded by the config.
type Labels struct {
	Agent, Connector, Action string
}

// labels bounds st's names by the current snapshot's config.
func (d *Dispatcher) labels(st *State) Labels {
	l := Labels{Agent: Unknown, Connector: Unknown, Action: Unknown}
	snap := d.snap.Load()
	if snap == nil || snap.Engine == nil {
		return l
	}
	if _, ok := snap.Engine.Agent(st.Tenant, st.Agent); ok {
		l.Agent = st.Agent
	}
	if c, ok := snap.Engine.Connector(st.Connector); ok {
		l.Connector = st.Connector
		if _, ok := c.ActionType(st.Action); ok {
			l.Action = st.Action
		}
	}
	return l
}

type nopObserver struct{}

func (nopObserver) Decided(Labels, call.Decision, time.Duration)          {}
func (nopObserver) Finished(Labels, call.Decision, string, time.Duration) {}
func (nopObserver) ApprovalRequested(Labels)                              {}
func (nopObserver) ApprovalResolved(Labels, string, time.Duration)        {}
func (nopObserver) ConnectorFailed(Labels)                                {}
func (nopObserver) SecretFailed(string)                                   {}
func (nopObserver) AuditAppended(time.Duration, error)                    {}
func (nopObserver) Reported(Labels, int64, float64)                       {}

// finished tells the observer st reached its final outcome.
func (d *Dispatcher) finished(st *State, elapsed time.Duration) {
	d.obs.Finished(d.labels(st), st.Decision, st.Status, elapsed)
}

// decided tells the observer st was decided in latency.
func (d *Dispatcher) decided(st *State, latency time.Duration) {
	d.obs.Decided(d.labels(st), st.Decision, latency)
}

// resolved tells the observer, and the call's trace, that st's approval
// request was granted, denied or expired at now.
func (d *Dispatcher) resolved(ctx context.Context, st *State, result string, now time.Time) {
	d.obs.ApprovalResolved(d.labels(st), result, now.Sub(st.CreatedAt))
	d.approvalSpan(ctx, st, result, now)
}

// startSpan starts a span named name for st, a child of the span in ctx.
func (d *Dispatcher) startSpan(ctx context.Context, name string, st *State) (context.Context, trace.Span) {
	ctx, span := d.tracer.Start(ctx, name)
	if span.IsRecording() {
		span.SetAttributes(d.attrs(st)...)
	}
	return ctx, span
}

// Tracing
//
// Call starts a `warden.call` span, a child of whatever span the front end
// put in ctx (the agent's own, from its W3C traceparent), with children
// `warden.decide`, `warden.audit` (one per record) and `warden.connector`
// (the executor adds `warden.secret` beneath it). A call that waits for a
// human keeps its span context in State.TraceParent: the approval's
// resolution adds a `warden.approval` span covering the wait, and the
// execution after approval a `warden.execute` span, both children of the
// call's span, so that the whole story is one trace.

var traceContext = propagation.TraceContext{}

func (d *Dispatcher) attrs(st *State) []attribute.KeyValue {
	a := []attribute.KeyValue{
		attribute.String("warden.call_id", st.ID),
		attribute.String("warden.agent", d.redact(st.Agent)),
		attribute.String("warden.connector", d.redact(st.Connector)),
		attribute.String("warden.action", d.redact(st.Action)),
		attribute.String("warden.config_version", st.ConfigVersion),
	}
	if st.Tenant != "" {
		a = append(a, attribute.String("warden.tenant", d.redact(st.Tenant)))
	}
	if st.FrontEnd != "" {
		a = append(a, attribute.String("warden.front_end", st.FrontEnd))
	}
	return a
}

// endSpan records st's decision and outcome on span and ends it.
func (d *Dispatcher) endSpan(span trace.Span, st *State, err error) {
	if span.IsRecording() {
		if st != nil {
			span.SetAttributes(
				attribute.String("warden.decision", string(st.Decision)),
				attribute.String("warden.outcome", st.Status),
			)
			if st.Status == StatusFailed {
				span.SetStatus(codes.Error, d.redact(st.Error))
			}
		}
		if err != nil {
			span.SetStatus(codes.Error, d.redact(err.Error()))
		}
	}
	span.End()
}

// traceParent returns the W3C traceparent of the span in ctx, if it is
// recorded, to keep with a call that outlives its request.
func traceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !trace.SpanFromContext(ctx).IsRecording() {
		return ""
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"]
}

// resumeTrace returns ctx with st's call span as the remote parent, when st
// kept one.
func resumeTrace(ctx context.Context, st *State) context.Context {
	if st.TraceParent == "" {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": st.TraceParent})
}

// approvalSpan records the wait for a human, from the request to now, in
// the call's trace.
func (d *Dispatcher) approvalSpan(ctx context.Context, st *State, result string, now time.Time) {
	if st.TraceParent == "" {
		return
	}
	_, span := d.tracer.Start(resumeTrace(ctx, st), "warden.approval", trace.WithTimestamp(st.CreatedAt))
	span.SetAttributes(d.attrs(st)...)
	span.SetAttributes(attribute.String("warden.approval.result", result))
	if st.Approval != nil {
		span.SetAttributes(attribute.String("warden.approval_id", st.Approval.ID))
	}
	span.End(trace.WithTimestamp(now))
}

// observedStore times every commit (the audit append, write-ahead and
// outcome alike) for the Observer and traces it as `warden.audit`.
type observedStore struct {
	Store
	obs    Observer
	tracer trace.Tracer
}

func (s observedStore) Commit(ctx context.Context, rec *audit.Record, st *State) error {
	ctx, span := s.tracer.Start(ctx, "warden.audit")
	start := time.Now()
	err := s.Store.Commit(ctx, rec, st)
	if !errors.Is(err, ErrConflict) { // a lost race is not an audit failure
		s.obs.AuditAppended(time.Since(start), err)
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String("warden.audit.kind", rec.Kind), attribute.Int64("warden.audit.seq", rec.Seq))
		if err != nil {
			span.SetStatus(codes.Error, "audit append failed")
		}
	}
	span.End()
	return err
}

func nopTracer() trace.Tracer { return noop.NewTracerProvider().Tracer("") }
