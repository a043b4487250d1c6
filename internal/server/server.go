// Package server is warden's HTTP front end: the REST API (/v1/...), health
// and readiness, and the web console (/ and /console/..., console.go). Handlers return errors; one function (handle) maps them to
// status codes and JSON bodies. Every request path goes through
// internal/dispatch; nothing here decides or executes.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"go.opentelemetry.io/otel/propagation"
)

// Authenticator resolves a bearer token to a principal.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (call.Principal, error)
}

// ErrBadToken is what an Authenticator returns for an unknown or revoked
// token.
var ErrBadToken = errors.New("unknown or revoked token")

// AuditQuery selects audit records.
type AuditQuery struct {
	Tenant   string // "" for every tenant
	Agent    string
	Decision string
	Since    time.Time
	Until    time.Time
	AfterSeq int64
	Limit    int
}

// AuditReader reads the audit trail.
type AuditReader interface {
	QueryAudit(ctx context.Context, q AuditQuery) ([]*audit.Record, error)
}

// Options configure a Server.
type Options struct {
	Dispatcher *dispatch.Dispatcher
	Auth       Authenticator
	Audit      AuditReader
	Ready      func(ctx context.Context) error // nil error: ready
	Logger     *slog.Logger
	MaxBody    int64 // request body limit; default 1 MiB
	Now        func() time.Time
	Slack      *SlackOptions // POST /slack/interactions (slack.go); nil: not configured
	Metrics    http.Handler  // GET /metrics, unauthenticated like /healthz; nil: not served here
	// Propagator reads the agent's trace context (W3C traceparent) from
	// each request, so that warden's spans join the agent's trace; nil:
	// ignored.
	Propagator propagation.TextMapPropagator
	// Operations backs the console's admin pages (console_admin.go); nil:
	// they answer 503.
	Operations Operations
	// MCP serves POST /mcp (internal/mcp) for agents this server has
	// authenticated; nil: not served.
	MCP MCPServer
}

// MCPServer is the MCP front end: it serves one Streamable HTTP request of
// an authenticated agent, or returns an error, before writing anything,
// for handle to answer.
type MCPServer interface {
	ServeMCP(w http.ResponseWriter, r *http.Request, p call.Principal) error
}

// Server serves the HTTP API.
type Server struct {
	d       *dispatch.Dispatcher
	auth    Authenticator
	audit   AuditReader
	ready   func(ctx context.Context) error
	log     *slog.Logger
	maxBody int64
	now     func() time.Time

	draining  chan struct{} // closed by Drain
	drainOnce sync.Once

	sessions *sessions // web console sign-ins (console_session.go)

	slack *slackHandler // Slack interactivity (slack.go); nil: not configured

	metrics    http.Handler
	propagator propagation.TextMapPropagator
	ops        Operations // the console's admin pages; nil: not available
	mcp        MCPServer  // POST /mcp; nil: not served
}

// New returns a server.
func New(o Options) *Server {
	s := &Server{d: o.Dispatcher, auth: o.Auth, audit: o.Audit, ready: o.Ready, log: o.Logger, maxBody: o.MaxBody, now: o.Now,
		draining: make(chan struct{}), sessions: newSessions()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.slack = newSlackHandler(o.Slack)
	s.metrics, s.propagator = o.Metrics, o.Propagator
	s.ops = o.Operations
	s.mcp = o.MCP
	return s
}

// Drain ends every long poll, now and from now on, with the call's current
// state: shutdown then waits for calls that run, not for clients waiting on
// a human. Register it with http.Server.RegisterOnShutdown.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// wait is dispatch.Wait cut short by Drain.
func (s *Server) wait(r *http.Request, p call.Principal, id string, wait time.Duration) (*dispatch.State, error) {
	select {
	case <-s.draining:
		wait = 0
	default:
	}
	if wait > 0 {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			select {
			case <-s.draining:
				cancel()
			case <-ctx.Done():
			}
		}()
		st, err := s.d.Wait(ctx, p, id, wait)
		if ctx.Err() == nil || r.Context().Err() != nil {
			return st, err
		}
		// Drained, perhaps in the middle of a read: answer with the state now.
	}
	return s.d.Wait(r.Context(), p, id, 0)
}

// Handler returns the HTTP handler with every route.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/calls", s.handle(s.postCall))
	mux.Handle("GET /v1/calls/{id}", s.handle(s.getCall))
	mux.Handle("POST /v1/decide", s.handle(s.postDecide))
	mux.Handle("POST /v1/calls/{id}/outcome", s.handle(s.postOutcome))
	mux.Handle("POST /v1/usage", s.handle(s.postUsage)) // usage.go
	mux.Handle("GET /v1/audit", s.handle(s.getAudit))
	mux.Handle("GET /v1/approvals", s.handle(s.getApprovals))
	mux.Handle("GET /v1/approvals/{id}", s.handle(s.getApproval))
	mux.Handle("POST /v1/approvals/{id}/approve", s.handle(s.postApprove))
	mux.Handle("POST /v1/approvals/{id}/deny", s.handle(s.postDeny))
	mux.Handle("POST /slack/interactions", s.handle(s.postSlackInteraction))
	if s.mcp != nil {
		// The agent's token, as for /v1/calls; GET and DELETE reach the
		// MCP handler too, which answers them per the transport spec.
		h := s.handle(func(w http.ResponseWriter, r *http.Request) error {
			p, err := s.principal(r, call.RoleAgent)
			if err != nil {
				return err
			}
			return s.mcp.ServeMCP(w, r, p)
		})
		mux.Handle("POST /mcp", h)
		mux.Handle("GET /mcp", h)
		mux.Handle("DELETE /mcp", h)
	}
	mux.Handle("GET /healthz", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	}))
	mux.Handle("GET /readyz", s.handle(s.getReady))
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics)
	}
	s.mountConsole(mux) // GET / and /console/... (console.go)
	mux.Handle("/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return newError(http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	}))
	if s.propagator == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := s.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		mux.ServeHTTP(w, r.WithContext(ctx))
	})
}

// principal authenticates the request and checks its role.
func (s *Server) principal(r *http.Request, roles ...call.Role) (call.Principal, error) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return call.Principal{}, newError(http.StatusUnauthorized, "unauthenticated", "missing bearer token: send Authorization: Bearer <token>")
	}
	p, err := s.auth.Authenticate(r.Context(), strings.TrimSpace(token))
	if errors.Is(err, ErrBadToken) {
		return call.Principal{}, newError(http.StatusUnauthorized, "unauthenticated", "unknown or revoked token")
	}
	if err != nil {
		return call.Principal{}, &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "cannot check the token right now", cause: err}
	}
	for _, role := range roles {
		if p.Role == role {
			return p, nil
		}
	}
	// "an": every role (admin, agent, approver, auditor) starts with a vowel.
	return call.Principal{}, newError(http.StatusForbidden, "forbidden", "an "+string(p.Role)+" token cannot do this")
}

// callResponse is what POST /v1/calls answers.
type callResponse struct {
	ID         string        `json:"id"`
	Decision   call.Decision `json:"decision"`
	Status     string        `json:"status"`
	Rules      []string      `json:"rules"`
	Reason     string        `json:"reason"`
	Result     any           `json:"result,omitempty"`
	Error      string        `json:"error,omitempty"`
	ApprovalID string        `json:"approval_id,omitempty"`
	ExpiresAt  *time.Time    `json:"expires_at,omitempty"`
	ResetsAt   *time.Time    `json:"resets_at,omitempty"` // when the rate limit or budget that refused it resets
	Version    string        `json:"config_version"`
}

func respond(st *dispatch.State) (int, callResponse) {
	resp := callResponse{ID: st.ID, Decision: st.Decision, Status: st.Status, Rules: st.Rules, Reason: st.Reason,
		Error: st.Error, ExpiresAt: st.ExpiresAt, ResetsAt: st.ResetsAt, Version: st.ConfigVersion}
	if len(st.Result) > 0 {
		resp.Result = jsonRaw(st.Result)
	}
	if st.Approval != nil {
		resp.ApprovalID = st.Approval.ID
	}
	switch st.Status {
	case dispatch.StatusRefused:
		return http.StatusForbidden, resp
	case dispatch.StatusPending, dispatch.StatusApproved, dispatch.StatusRunning:
		return http.StatusAccepted, resp
	case dispatch.StatusExpired:
		// It waited and nobody approved: refused, with the expiry as reason.
		return http.StatusForbidden, resp
	}
	return http.StatusOK, resp
}

func (s *Server) postCall(w http.ResponseWriter, r *http.Request) error {
	return s.call(w, r, false)
}

func (s *Server) postDecide(w http.ResponseWriter, r *http.Request) error {
	return s.call(w, r, true)
}

func (s *Server) call(w http.ResponseWriter, r *http.Request, decideOnly bool) error {
	p, err := s.principal(r, call.RoleAgent)
	if err != nil {
		return err
	}
	var req callRequest
	if err := decodeJSON(w, r, s.maxBody, &req); err != nil {
		return err
	}
	if err := req.validate(!decideOnly); err != nil {
		return err
	}
	st, err := s.d.Call(r.Context(), p, dispatch.Request{
		Connector: req.Connector, Action: req.Action, Args: req.args,
		Environment: req.Environment, RunID: req.RunID, Trigger: req.Trigger,
		FrontEnd: req.FrontEnd, DecideOnly: decideOnly,
		DelegateApproval: req.FrontEnd == audit.FrontEndHook,
	})
	if err != nil {
		return err
	}
	if st.Status == dispatch.StatusPending && req.wait > 0 {
		if st, err = s.wait(r, p, st.ID, req.wait); err != nil {
			return err
		}
	}
	status, resp := respond(st)
	if decideOnly {
		// The decision is the answer, whatever it is.
		status = http.StatusOK
	}
	status = limitStatus(w, st, status) // 429 and Retry-After for a rate limit (usage.go)
	writeJSON(w, status, resp)
	return nil
}

func (s *Server) getCall(w http.ResponseWriter, r *http.Request) error {
	p, err := s.principal(r, call.RoleAgent, call.RoleAdmin, call.RoleAuditor)
	if err != nil {
		return err
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			return newError(http.StatusBadRequest, "invalid_parameter", "wait: must be a duration such as 30s")
		}
		wait = min(wait, maxWait)
	}
	st, err := s.wait(r, p, r.PathValue("id"), wait)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, stateJSON(st))
	return nil
}

// stateJSON renders a call state with its result inline.
func stateJSON(st *dispatch.State) any {
	type out struct {
		*dispatch.State
		Result any `json:"result,omitempty"`
	}
	o := out{State: st}
	if len(st.Result) > 0 {
		o.Result = jsonRaw(st.Result)
	}
	return o
}

type outcomeRequest struct {
	Status     string          `json:"status"`
	Result     json.RawMessage `json:"result"`
	Error      string          `json:"error"`
	DurationMS int64           `json:"duration_ms"`
	Tokens     int64           `json:"tokens"`
	CostUSD    float64         `json:"cost_usd"`
}

func (s *Server) postOutcome(w http.ResponseWriter, r *http.Request) error {
	p, err := s.principal(r, call.RoleAgent)
	if err != nil {
		return err
	}
	var req outcomeRequest
	if err := decodeJSON(w, r, s.maxBody, &req); err != nil {
		return err
	}
	if req.DurationMS < 0 || req.Tokens < 0 || req.CostUSD < 0 {
		return newError(http.StatusBadRequest, "invalid_field", "duration_ms, tokens and cost_usd must not be negative")
	}
	st, err := s.d.ReportOutcome(r.Context(), p, r.PathValue("id"), dispatch.Report{
		Status: req.Status, Result: req.Result, Error: req.Error,
		DurationMS: req.DurationMS, Tokens: req.Tokens, CostUSD: req.CostUSD,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, stateJSON(st))
	return nil
}

func (s *Server) getAudit(w http.ResponseWriter, r *http.Request) error {
	p, err := s.principal(r, call.RoleAuditor, call.RoleAdmin)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	aq := AuditQuery{Tenant: p.Tenant, Agent: q.Get("agent"), Decision: q.Get("decision"), Limit: 100}
	if t := q.Get("tenant"); t != "" {
		if !p.InTenant(t) {
			return newError(http.StatusForbidden, "forbidden", "this token cannot read tenant "+strconv.Quote(t))
		}
		aq.Tenant = t
	}
	if aq.Decision != "" && !call.Decision(aq.Decision).Valid() {
		return newError(http.StatusBadRequest, "invalid_parameter", "decision: must be ALLOW, ALLOW_WITH_CONSTRAINTS, REQUIRE_APPROVAL or DENY")
	}
	now := s.now()
	for name, dst := range map[string]*time.Time{"since": &aq.Since, "until": &aq.Until} {
		if v := q.Get(name); v != "" {
			t, err := ParseTime(v, now)
			if err != nil {
				return newError(http.StatusBadRequest, "invalid_parameter", name+": "+err.Error())
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return newError(http.StatusBadRequest, "invalid_parameter", "limit: must be an integer from 1 to 10000")
		}
		aq.Limit = n
	}
	if v := q.Get("after_seq"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return newError(http.StatusBadRequest, "invalid_parameter", "after_seq: must be a non-negative integer")
		}
		aq.AfterSeq = n
	}
	recs, err := s.audit.QueryAudit(r.Context(), aq)
	if err != nil {
		return &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "cannot read the audit trail", cause: err}
	}
	if recs == nil {
		recs = []*audit.Record{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": recs})
	return nil
}

func (s *Server) getReady(w http.ResponseWriter, r *http.Request) error {
	if s.ready != nil {
		if err := s.ready(r.Context()); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unready"})
			return nil
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// ParseTime reads an RFC 3339 time, or a duration before now such as 30m,
// 24h or 7d.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, errors.New("must be an RFC 3339 time or a duration such as 30m, 24h or 7d")
}
