// Package dispatch is the one request path every front end (REST, MCP,
// Claude Code hooks) uses: kill switch → policy decision → decision record
// written durably → connector executes → outcome record. A call whose
// decision cannot be recorded does not run (fail closed).
//
// It owns the interfaces it needs (Store, Executor) and knows nothing of
// HTTP or SQL; internal/app wires concrete implementations in.
package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/limit"
	"github.com/warden-dev/warden/internal/policy"
	"github.com/warden-dev/warden/internal/schema"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Call statuses.
const (
	StatusPending   = "pending"   // waiting for a human (or for expiry)
	StatusApproved  = "approved"  // approved by enough humans; not yet claimed for execution
	StatusRunning   = "running"   // decided and recorded; the connector is executing
	StatusSucceeded = "succeeded" // executed, connector reported success
	StatusFailed    = "failed"    // executed (or tried to), connector failed
	StatusRefused   = "refused"   // denied: never executed
	StatusExpired   = "expired"   // nobody approved in time: never executed
	StatusDecided   = "decided"   // decide-only: the runtime executes and reports the outcome
)

// RuleKillSwitch names the kill switch in decisions it refuses.
const RuleKillSwitch = "kill-switch"

// State is a call's current state, as GET /v1/calls/{id} returns it.
type State struct {
	ID            string          `json:"id"`
	Tenant        string          `json:"tenant"`
	Agent         string          `json:"agent"`
	Connector     string          `json:"connector"`
	Action        string          `json:"action"`
	ActionType    string          `json:"action_type"`
	Environment   string          `json:"environment,omitempty"`
	RunID         string          `json:"run_id,omitempty"`
	FrontEnd      string          `json:"front_end"`
	Trigger       string          `json:"trigger,omitempty"`
	Args          json.RawMessage `json:"-"`
	Decision      call.Decision   `json:"decision"`
	Rules         []string        `json:"rules"`
	Reason        string          `json:"reason"`
	ConfigVersion string          `json:"config_version"`
	Status        string          `json:"status"`
	Result        json.RawMessage `json:"result,omitempty"`
	Error         string          `json:"error,omitempty"`
	DecideOnly    bool            `json:"decide_only,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	ExpiresAt     *time.Time      `json:"expires_at,omitempty"`
	DurationMS    int64           `json:"duration_ms,omitempty"`
	// Approval is the approval request of a REQUIRE_APPROVAL call, with
	// the votes so far; saved with the state, so durable with its records.
	Approval *approval.Request `json:"approval,omitempty"`
	// TraceParent is the W3C traceparent of the call's span when it was
	// traced, kept so that the approval wait and the execution after it
	// join the call's trace (observe.go).
	TraceParent string `json:"trace_parent,omitempty"`
	// ResetsAt is when the limit that refused the call (rules rate-limit
	// or budget, limits.go) lets calls through again.
	ResetsAt *time.Time `json:"resets_at,omitempty"`

	// PrevStatus is the status this change moves the call from ("" for a
	// new call). Store.Commit applies the change only if the stored status
	// still is PrevStatus, and fails with ErrConflict otherwise, so that two
	// processes racing on one call (two expirers, an approval and an expiry)
	// cannot both win.
	PrevStatus string `json:"-"`
	// Revision counts the changes saved to this call; the store refuses a
	// change made to an older revision than the stored one (ErrConflict).
	Revision int64 `json:"-"`

	auditArgs json.RawMessage // Args as the audit trail records them (redacted), once computed
}

// Store persists audit records and call states. Commit must append rec to
// the audit chain and save st in one durable transaction: either both are
// recorded or neither is.
type Store interface {
	Commit(ctx context.Context, rec *audit.Record, st *State) error
	CallState(ctx context.Context, id string) (*State, error) // ErrNotFound when absent
	Killed(ctx context.Context, tenant, agent string) (*Kill, error)
	DuePending(ctx context.Context, now time.Time, limit int) ([]*State, error)
	StaleRunning(ctx context.Context, before time.Time, limit int) ([]*State, error)
}

// Kill is an active kill switch entry.
type Kill struct {
	By  string
	At  time.Time
	Why string
}

// Executor runs one connector's actions.
type Executor interface {
	Execute(ctx context.Context, action string, args map[string]any) (*Outcome, error)
}

// CallInfo is what an executor may learn of the call it runs, for audit
// records of its own (a sandbox's egress attempts): CallFrom(ctx) in
// Execute.
type CallInfo struct {
	ID, Tenant, Agent, RunID, FrontEnd string
}

type callInfoKey struct{}

// CallFrom returns the call an executor's context runs, if any.
func CallFrom(ctx context.Context) (CallInfo, bool) {
	ci, ok := ctx.Value(callInfoKey{}).(CallInfo)
	return ci, ok
}

// Outcome is what an executor reports. Result must be JSON-shaped.
type Outcome struct {
	Failed bool
	Result any
	// Error is what the agent is told: what went wrong in its terms
	// ("upstream timed out"), never internal addresses, paths or Go error
	// text. Detail, if set, is the full story for operators: the audit
	// record's error and a warning when the call failed, an info log line
	// ("call detail") when it succeeded; never the agent.
	Error           string
	Detail          string
	CredentialsUsed []string
	// CredentialFailed: a credential could not be resolved (counted for
	// the connector; the request was not sent).
	CredentialFailed bool
}

// Snapshot is everything that changes with the config version. A call
// takes the snapshot once and finishes under it.
type Snapshot struct {
	Engine    *policy.Engine
	Executors map[string]Executor       // by connector name; absent: decide-only
	Schemas   map[string]*schema.Schema // by "connector/action"
}

// Options configure a Dispatcher.
type Options struct {
	Store           Store
	Approvals       ApprovalStore // finds approval requests; nil: approvals cannot be decided
	Logger          *slog.Logger
	Now             func() time.Time // default time.Now
	ApprovalTimeout time.Duration    // how long a call waits for a human; default 15m
	ExecTimeout     time.Duration    // upper bound on one execution; default 60s
	Redactor        Redactor         // scrubs secrets from what is recorded and returned; nil: nothing is scrubbed
	Notifier        Notifier         // announces new approval requests (notify.go); nil: none
	Observer        Observer         // metrics (observe.go); nil: none
	Tracer          trace.Tracer     // spans (observe.go); nil: none
	Usage           UsageStore       // daily usage for budgets (limits.go); nil: budgets not enforced
}

// Dispatcher runs calls. It is safe for concurrent use.
type Dispatcher struct {
	store           Store
	approvals       ApprovalStore
	redactor        Redactor
	notifier        Notifier
	obs             Observer
	tracer          trace.Tracer
	usage           UsageStore
	limiter         *limit.Limiter // calls_per_minute buckets of this process (limits.go)
	log             *slog.Logger
	now             func() time.Time
	approvalTimeout time.Duration
	execTimeout     time.Duration
	snap            atomic.Pointer[Snapshot]

	mu       sync.Mutex
	watchers map[string]chan struct{} // call id → closed when its state changes

	// running counts executions in progress, so that shutdown can let them
	// record their outcome before the store closes.
	running sync.WaitGroup

	// inflight holds the executions in progress, so that a kill switch can
	// stop them (StopKilled). Guarded by mu.
	inflight map[string]*execution
}

// execution is one connector execution in progress.
type execution struct {
	tenant, agent string
	cancel        context.CancelCauseFunc
}

// errKilled is the cause an execution is cancelled with when a kill switch
// stops its agent.
var errKilled = errors.New("killed during execution")

// WaitIdle waits until no execution is in progress, or ctx ends. Shutdown
// calls it after the HTTP server stopped accepting, so that a call whose
// client gave up still gets its outcome record.
func (d *Dispatcher) WaitIdle(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		d.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// New returns a dispatcher serving snap.
func New(opts Options, snap *Snapshot) *Dispatcher {
	d := &Dispatcher{
		store:           opts.Store,
		approvals:       opts.Approvals,
		redactor:        opts.Redactor,
		notifier:        opts.Notifier,
		log:             opts.Logger,
		now:             opts.Now,
		approvalTimeout: opts.ApprovalTimeout,
		execTimeout:     opts.ExecTimeout,
		watchers:        map[string]chan struct{}{},
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.approvalTimeout <= 0 {
		d.approvalTimeout = 15 * time.Minute
	}
	if d.execTimeout <= 0 {
		d.execTimeout = 60 * time.Second
	}
	d.obs, d.tracer = opts.Observer, opts.Tracer
	d.usage, d.limiter = opts.Usage, limit.NewLimiter()
	if d.obs == nil {
		d.obs = nopObserver{}
	}
	if d.tracer == nil {
		d.tracer = nopTracer()
	}
	d.store = observedStore{Store: opts.Store, obs: d.obs, tracer: d.tracer}
	d.snap.Store(snap)
	return d
}

// Swap makes snap the config for every later call; calls in flight finish
// under the snapshot they started with.
func (d *Dispatcher) Swap(snap *Snapshot) { d.snap.Store(snap) }

// Snapshot returns the current snapshot.
func (d *Dispatcher) Snapshot() *Snapshot { return d.snap.Load() }

// Request is one call as a front end received it.
type Request struct {
	Connector   string
	Action      string
	Args        map[string]any
	Environment string
	RunID       string
	FrontEnd    string // rest, mcp, hook
	Trigger     string // who or what started the run, if the caller says
	DecideOnly  bool   // decide and record, do not execute
	// DelegateApproval (decide-only): a REQUIRE_APPROVAL is put to the
	// runtime's own user — Claude Code asks its user — instead of warden's
	// approvers. The call is decided, recorded as asked, and its reported
	// outcome records that the user let it run.
	DelegateApproval bool

	begun time.Time // when warden took the call up (for the end-to-end latency)
}

// Call decides req for principal p and, when allowed, executes it. A DENY or
// a pending approval is not an error: the returned State says so. Errors are
// *Error.
func (d *Dispatcher) Call(ctx context.Context, p call.Principal, req Request) (*State, error) {
	req.begun = time.Now()
	ctx, span := d.tracer.Start(ctx, "warden.call", trace.WithSpanKind(trace.SpanKindServer))
	st, err := d.call(ctx, p, req)
	d.endSpan(span, st, err)
	return st, err
}

func (d *Dispatcher) call(ctx context.Context, p call.Principal, req Request) (*State, error) {
	if p.Role != call.RoleAgent || p.Agent == "" {
		return nil, errorf(Forbidden, "not_an_agent", "only agent tokens can make calls")
	}
	snap := d.snap.Load()
	if req.Args == nil {
		req.Args = map[string]any{}
	}
	args, err := json.Marshal(req.Args)
	if err != nil {
		return nil, &Error{Kind: Invalid, Code: "invalid_args", Message: "args: not representable as JSON", Err: err}
	}
	var actionType call.ActionType
	conn, connOK := snap.Engine.Connector(req.Connector)
	actionOK := false
	if connOK {
		actionType, actionOK = conn.ActionType(req.Action)
	}
	exec, executable := snap.Executors[req.Connector]

	now := d.now().UTC()
	st := &State{
		ID: call.NewID("call", now), Tenant: p.Tenant, Agent: p.Agent,
		Connector: req.Connector, Action: req.Action, ActionType: string(actionType),
		Environment: req.Environment, RunID: req.RunID, FrontEnd: req.FrontEnd, Trigger: req.Trigger,
		Args: args, ConfigVersion: snap.Engine.Version(), DecideOnly: req.DecideOnly,
		CreatedAt: now, UpdatedAt: now,
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(d.attrs(st)...)
		st.TraceParent = traceParent(ctx)
	}

	decideStart := time.Now()
	_, decideSpan := d.tracer.Start(ctx, "warden.decide")
	kill, err := d.store.Killed(ctx, p.Tenant, p.Agent)
	if err != nil {
		decideSpan.End()
		return nil, &Error{Kind: Unavailable, Code: "unavailable", Message: "cannot check the kill switch; the call was not run", Err: err}
	}
	// Decide first: an unknown or killed agent learns nothing about
	// connectors, actions or schemas from what comes next.
	var v call.Verdict
	var limited *call.Verdict // a rate limit or budget refuses it (limits.go)
	if kill == nil {
		if limited, err = d.limits(ctx, snap, p, req, st); err != nil {
			decideSpan.End()
			return nil, &Error{Kind: Unavailable, Code: "unavailable", Message: "cannot check the agent's budget; the call was not run", Err: err}
		}
	}
	if kill != nil {
		v = call.Verdict{Decision: call.Deny, Rules: []string{RuleKillSwitch}, ActionType: actionType,
			Reason: fmt.Sprintf("denied: killed by %s at %s", kill.By, kill.At.UTC().Format(time.RFC3339))}
		if kill.Why != "" {
			v.Reason += ": " + kill.Why
		}
	} else if limited != nil {
		v = *limited
		v.ActionType = actionType
	} else {
		v = snap.Engine.Decide(&call.Call{
			Tenant: p.Tenant, Agent: p.Agent, Connector: req.Connector, Action: req.Action,
			Args: req.Args, Environment: req.Environment, RunID: req.RunID, Time: now,
		})
	}
	st.Decision, st.Rules, st.Reason = v.Decision, v.Rules, v.Reason
	d.decided(st, time.Since(decideStart))
	d.endSpan(decideSpan, st, nil)

	// A request naming what does not exist, what warden does not run, or
	// args its action's schema refuses is a 400 — and still recorded.
	var invalid *Error
	_, agentKnown := snap.Engine.Agent(p.Tenant, p.Agent)
	switch {
	case kill != nil || limited != nil || !agentKnown:
	case !connOK:
		invalid = errorf(Invalid, "unknown_connector", "connector: unknown connector %q", req.Connector)
	case !actionOK:
		invalid = errorf(Invalid, "unknown_action", "action: connector %q has no action %q", req.Connector, req.Action)
	case v.Decision == call.Deny:
	case !req.DecideOnly && !executable:
		invalid = errorf(Invalid, "decide_only_connector", "connector: %q (type %s) is not executed by warden; ask POST /v1/decide and report the outcome", req.Connector, conn.Type)
	default:
		if s := snap.Schemas[req.Connector+"/"+req.Action]; s != nil {
			if err := s.Validate(req.Args); err != nil {
				invalid = &Error{Kind: Invalid, Code: "invalid_args", Message: err.Error()}
			}
		}
	}
	if invalid != nil {
		st.Status, st.Error = StatusRefused, invalid.Message
		rec := d.record(st, audit.KindDecision, req.Trigger)
		rec.Outcome = audit.OutcomeRefused
		if err := d.store.Commit(ctx, rec, st); err != nil {
			return nil, &Error{Kind: Unavailable, Code: "audit_unavailable", Message: "the request could not be recorded; the call was not run", Err: err}
		}
		d.finished(st, time.Since(req.begun))
		return nil, invalid
	}

	kind := audit.KindDecision
	if req.DecideOnly {
		kind = audit.KindDecisionOnly
	}
	rec := d.record(st, kind, req.Trigger)
	switch v.Decision {
	case call.Deny:
		st.Status = StatusRefused
		rec.Outcome = StatusRefused
	case call.RequireApproval:
		if req.DecideOnly && req.DelegateApproval {
			st.Status = StatusDecided
			st.Reason = strings.TrimSpace(st.Reason + " (asked the user of " + st.Connector + ")")
			rec.Reason = d.redact(st.Reason)
			break
		}
		st.Status = StatusPending
		timeout := d.approvalTimeout
		if v.Approval != nil && v.Approval.Timeout > 0 {
			timeout = v.Approval.Timeout
		}
		exp := now.Add(timeout)
		st.ExpiresAt = &exp
		st.Approval = approval.New(call.NewID("apr", now), v.Approval)
	default:
		st.Status = StatusRunning
		if req.DecideOnly {
			st.Status = StatusDecided
		}
	}
	// Write-ahead: the decision is durable before anything runs.
	if err := d.store.Commit(ctx, rec, st); err != nil {
		d.log.ErrorContext(ctx, "audit append failed; call refused", "call", st.ID, "err", err)
		return nil, &Error{Kind: Unavailable, Code: "audit_unavailable", Message: "the decision could not be recorded; the call was not run", Err: err}
	}
	if st.Status != StatusRunning {
		if st.Status == StatusPending {
			d.obs.ApprovalRequested(d.labels(st))
		} else {
			d.finished(st, time.Since(req.begun))
		}
		d.announce(st)
		return st, nil
	}
	return d.execute(ctx, exec, st, req)
}

func (d *Dispatcher) execute(ctx context.Context, exec Executor, st *State, req Request) (*State, error) {
	d.running.Add(1)
	defer d.running.Done()
	// The call runs to completion even if the client goes away: its outcome
	// must be recorded either way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.execTimeout)
	defer cancel()
	// ectx is the execution's own context: a kill switch cancels it, never
	// the recording of the outcome that follows.
	ectx, kill := context.WithCancelCause(ctx)
	defer kill(nil)
	d.mu.Lock()
	if d.inflight == nil {
		d.inflight = map[string]*execution{}
	}
	d.inflight[st.ID] = &execution{tenant: st.Tenant, agent: st.Agent, cancel: kill}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.inflight, st.ID)
		d.mu.Unlock()
	}()
	start := d.now()
	cctx, connSpan := d.tracer.Start(ectx, "warden.connector")
	cctx = context.WithValue(cctx, callInfoKey{}, CallInfo{ID: st.ID, Tenant: st.Tenant, Agent: st.Agent, RunID: st.RunID, FrontEnd: st.FrontEnd})
	out, err := exec.Execute(cctx, req.Action, req.Args)
	if err != nil {
		out = &Outcome{Failed: true, Error: "the connector failed", Detail: err.Error()}
	}
	if out == nil {
		out = &Outcome{Failed: true, Error: "connector returned nothing"}
	}
	if errors.Is(context.Cause(ectx), errKilled) {
		// Whatever the connector made of its cancelled context, the agent
		// was stopped by the kill switch: say so.
		out.Failed, out.Detail = true, out.Error
		out.Error = "stopped by the kill switch during execution; the action may have partly run"
	}
	if out.Failed {
		d.obs.ConnectorFailed(d.labels(st))
		connSpan.SetStatus(codes.Error, d.redact(out.Error))
	}
	if out.CredentialFailed {
		d.obs.SecretFailed(d.labels(st).Connector)
	}
	connSpan.End()
	end := d.now().UTC()
	st.DurationMS = end.Sub(start).Milliseconds()
	st.PrevStatus = StatusRunning
	st.UpdatedAt = end
	st.Status, st.Error = StatusSucceeded, ""
	if out.Failed {
		st.Status, st.Error = StatusFailed, out.Error
	}
	if out.Result != nil {
		b, err := json.Marshal(out.Result)
		if err != nil {
			st.Status, st.Error = StatusFailed, "connector result is not JSON"
		} else {
			st.Result = b
		}
	}
	st.Result, st.Error = d.redactJSON(st.Result), d.redact(st.Error)
	rec := d.record(st, audit.KindOutcome, req.Trigger)
	rec.Outcome = st.Status
	rec.CredentialsUsed = out.CredentialsUsed
	switch {
	case out.Failed && out.Detail != "":
		rec.Error = d.redact(out.Error + ": " + out.Detail)
		d.log.WarnContext(ctx, "call failed", "call", st.ID, "connector", st.Connector, "action", st.Action, "err", rec.Error)
	case out.Detail != "":
		// A succeeded call's detail (a kept work directory) is for operators:
		// the log, never the agent or the result.
		d.log.InfoContext(ctx, "call detail", "call", st.ID, "connector", st.Connector, "action", st.Action, "detail", d.redact(out.Detail))
	}
	if err := d.store.Commit(ctx, rec, st); err != nil {
		// The action ran but its outcome is not recorded: the caller must not
		// take this for success, and operators must see it.
		d.log.ErrorContext(ctx, "outcome record failed after execution", "call", st.ID, "err", err)
		return nil, &Error{Kind: Unavailable, Code: "audit_unavailable", Message: "the call ran but its outcome could not be recorded", Err: err}
	}
	d.finished(st, time.Since(req.begun))
	d.notify(st.ID)
	return st, nil
}

// record builds the audit record for st.
func (d *Dispatcher) record(st *State, kind, trigger string) *audit.Record {
	if st.auditArgs == nil {
		// Every record of a call carries its args: scrub them once.
		st.auditArgs = d.redactJSON(st.Args)
	}
	r := &audit.Record{
		ID:            call.NewID("rec", st.UpdatedAt),
		Time:          st.UpdatedAt,
		Tenant:        st.Tenant,
		Agent:         st.Agent,
		RunID:         st.RunID,
		Trigger:       trigger,
		FrontEnd:      st.FrontEnd,
		Kind:          kind,
		CallID:        st.ID,
		Connector:     st.Connector,
		Action:        st.Action,
		ActionType:    st.ActionType,
		Args:          st.auditArgs,
		Environment:   st.Environment,
		Decision:      string(st.Decision),
		Rules:         st.Rules,
		Reason:        d.redact(st.Reason),
		ConfigVersion: st.ConfigVersion,
		Error:         d.redact(st.Error),
		DurationMS:    st.DurationMS,
	}
	if len(st.Result) > 0 {
		sum := sha256.Sum256(st.Result)
		r.ResultDigest = "sha256:" + hex.EncodeToString(sum[:])
	}
	if st.Approval != nil {
		// The latest vote: the one this record is about, or the one that
		// let the call run.
		if v := st.Approval.Last(); v != nil {
			r.Approval = &audit.Approval{ID: st.Approval.ID, Approver: v.Approver, Channel: v.Channel, DecidedAt: v.At, Comment: v.Comment}
		}
	}
	return r
}

// Get returns a call's state for principal p. Agents see only their own
// calls; admins and auditors see their tenant's.
func (d *Dispatcher) Get(ctx context.Context, p call.Principal, id string) (*State, error) {
	st, err := d.store.CallState(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, errorf(NotFound, "not_found", "no call %q", id)
	}
	if err != nil {
		return nil, &Error{Kind: Unavailable, Code: "unavailable", Message: "cannot read the call", Err: err}
	}
	if !visible(p, st) {
		return nil, errorf(NotFound, "not_found", "no call %q", id)
	}
	return st, nil
}

func visible(p call.Principal, st *State) bool {
	switch p.Role {
	case call.RoleAgent:
		return p.Tenant == st.Tenant && p.Agent == st.Agent
	case call.RoleAdmin, call.RoleAuditor, call.RoleApprover:
		return p.InTenant(st.Tenant)
	}
	return false
}

// Wait returns the call's state once it is no longer pending or running, or
// when wait elapses, whichever comes first.
func (d *Dispatcher) Wait(ctx context.Context, p call.Principal, id string, wait time.Duration) (*State, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	st, err := d.Get(ctx, p, id)
	if err != nil || !inProgress(st) || wait <= 0 {
		return st, err
	}
	for {
		// Watch only calls still in progress, and read again once watching
		// so that a change in between is not missed. A watcher for an unknown
		// or finished call would never be notified, and so never removed:
		// if the call finished meanwhile, notify removes it here.
		ch := d.watch(id)
		if st, err = d.Get(ctx, p, id); err != nil || !inProgress(st) {
			d.notify(id)
			return st, err
		}
		// Another process (a CLI, another replica) may change the state
		// without telling us: re-read at least every 250ms.
		poll := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ch:
		case <-poll.C:
		case <-deadline.C:
			poll.Stop()
			return d.Get(ctx, p, id)
		case <-ctx.Done():
			poll.Stop()
			return st, nil
		}
		poll.Stop()
	}
}

func inProgress(st *State) bool {
	return st.Status == StatusPending || st.Status == StatusApproved || st.Status == StatusRunning
}

func (d *Dispatcher) watch(id string) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch, ok := d.watchers[id]
	if !ok {
		ch = make(chan struct{})
		d.watchers[id] = ch
	}
	return ch
}

// Wake makes the long polls waiting on call id re-read it now: another
// process (a replica sharing the store) changed it.
func (d *Dispatcher) Wake(id string) { d.notify(id) }

func (d *Dispatcher) notify(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch, ok := d.watchers[id]; ok {
		close(ch)
		delete(d.watchers, id)
	}
}

// Report records what a decide-only runtime says happened.
type Report struct {
	Status     string // succeeded or failed
	Result     json.RawMessage
	Error      string
	DurationMS int64
	Tokens     int64
	CostUSD    float64
}

// ReportOutcome records the outcome of a decide-only call that was allowed.
func (d *Dispatcher) ReportOutcome(ctx context.Context, p call.Principal, id string, r Report) (*State, error) {
	if r.Status != StatusSucceeded && r.Status != StatusFailed {
		return nil, errorf(Invalid, "invalid_status", "status: must be %q or %q", StatusSucceeded, StatusFailed)
	}
	if p.Role != call.RoleAgent {
		return nil, errorf(Forbidden, "not_an_agent", "only the calling agent can report an outcome")
	}
	st, err := d.Get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if !st.DecideOnly || st.Status != StatusDecided {
		return nil, errorf(Conflict, "not_reportable", "call %q is %s; only an allowed decide-only call awaiting its outcome can be reported", id, st.Status)
	}
	st.PrevStatus = st.Status
	st.Status, st.Error, st.DurationMS = r.Status, r.Error, r.DurationMS
	st.UpdatedAt = d.now().UTC()
	if len(r.Result) > 0 {
		st.Result = r.Result
	}
	st.Result, st.Error = d.redactJSON(st.Result), d.redact(st.Error)
	rec := d.record(st, audit.KindReportedOutcome, "")
	rec.Outcome = st.Status
	if st.Decision == call.RequireApproval && st.Approval == nil {
		// A delegated approval (no request of warden's own): the runtime's
		// user let the call run, or it would not report.
		rec.Approval = &audit.Approval{Approver: "user of " + st.Connector, Channel: st.FrontEnd, DecidedAt: st.UpdatedAt,
			Comment: "the runtime asked its user, who let the call run"}
	}
	rec.Tokens, rec.CostUSD = r.Tokens, r.CostUSD
	if err := d.store.Commit(ctx, rec, st); errors.Is(err, ErrConflict) {
		return nil, errorf(Conflict, "not_reportable", "call %q changed state concurrently; its outcome was already reported", id)
	} else if err != nil {
		return nil, &Error{Kind: Unavailable, Code: "audit_unavailable", Message: "the outcome could not be recorded", Err: err}
	}
	d.obs.Reported(d.labels(st), r.Tokens, r.CostUSD)
	d.notify(id)
	return st, nil
}

// ExpireDue expires pending calls whose approval window has passed, each
// with an audit record. It returns how many it expired.
func (d *Dispatcher) ExpireDue(ctx context.Context) (int, error) {
	now := d.now().UTC()
	due, err := d.store.DuePending(ctx, now, 100)
	if err != nil {
		return 0, err
	}
	return d.close(ctx, due, now, func(st *State) *audit.Record {
		st.Status = StatusExpired
		st.Error = fmt.Sprintf("no approval before %s", st.ExpiresAt.UTC().Format(time.RFC3339))
		st.Reason = "expired: " + st.Error
		rec := d.record(st, audit.KindExpired, "")
		rec.Outcome = audit.OutcomeExpired
		return rec
	}, func(st *State) {
		d.resolved(ctx, st, ApprovalExpired, now)
		d.finished(st, 0)
	})
}

// ReapInterrupted closes calls whose execution was cut off before its
// outcome was recorded (warden was killed mid-call): a call still running
// well past the execution timeout cannot be running anywhere. Each gets an
// outcome record, failed, saying the action may or may not have happened.
func (d *Dispatcher) ReapInterrupted(ctx context.Context) (int, error) {
	now := d.now().UTC()
	stale, err := d.store.StaleRunning(ctx, now.Add(-d.execTimeout-time.Minute), 100)
	if err != nil {
		return 0, err
	}
	return d.close(ctx, stale, now, func(st *State) *audit.Record {
		st.Status = StatusFailed
		st.Error = "interrupted: warden stopped before the outcome was recorded; the action may or may not have run"
		rec := d.record(st, audit.KindOutcome, "")
		rec.Outcome = audit.OutcomeFailed
		return rec
	}, nil)
}

// close moves each of sts on from the status it was read in: change sets
// the new state and returns its audit record; the commit is conditional on
// the status read, so a call another process moved first is skipped. after,
// if set, runs for each call closed. It returns how many it closed.
func (d *Dispatcher) close(ctx context.Context, sts []*State, now time.Time, change func(*State) *audit.Record, after func(*State)) (int, error) {
	n := 0
	for _, st := range sts {
		st.PrevStatus = st.Status
		st.UpdatedAt = now
		rec := change(st)
		err := d.store.Commit(ctx, rec, st)
		if errors.Is(err, ErrConflict) {
			continue // someone else moved it first
		}
		if err != nil {
			return n, err
		}
		if after != nil {
			after(st)
		}
		d.notify(st.ID)
		n++
	}
	return n, nil
}
