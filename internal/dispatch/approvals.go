package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
)

// Exactly once
//
// A REQUIRE_APPROVAL call is saved `pending` with its approval request.
// Every vote is a conditional commit from `pending`; the vote that brings
// the approvals to the minimum moves the call to `approved`. Execution
// claims the call with a second conditional commit, `approved` → `running`
// (a `started` record, write-ahead like any decision), and only the claimant
// runs the connector. Whoever approves — this server, another replica, the
// CLI in its own process — at most one claim wins, so at most one execution.
//
// The server that receives an approval (API, console, Slack) claims and runs
// the call at once. Calls approved elsewhere (the CLI), or left `approved`
// by a crash between approval and claim, are claimed by ExecuteApproved,
// which the server runs at start and then every 250 ms. A crash after the
// claim leaves the call `running`: its connector may or may not have acted,
// and warden does not run it a second time.

// ApprovalStore finds approval requests and the calls waiting on them.
type ApprovalStore interface {
	// CallByApproval returns the call an approval request belongs to, or
	// ErrNotFound.
	CallByApproval(ctx context.Context, approvalID string) (*State, error)
	// ApprovalCalls returns calls with an approval request, newest first:
	// all of them ("" status), or those in one call status.
	ApprovalCalls(ctx context.Context, tenant, status string, limit int) ([]*State, error)
	// ApprovedCalls returns up to limit calls in status approved, oldest first.
	ApprovedCalls(ctx context.Context, limit int) ([]*State, error)
	// ApproverScope returns the agent/connector scope of an approver token.
	ApproverScope(ctx context.Context, tokenID string) (approval.Scope, error)
}

// Vote is a human's decision on an approval request.
type Vote struct {
	ApprovalID string
	Approve    bool
	Comment    string
	Channel    string // approval.ChannelAPI, ChannelCLI, ChannelWeb, ChannelSlack
}

// maxComment bounds a vote's comment; it ends up in every later record.
const maxComment = 2000

// Decide records p's vote on an approval request. Approving with enough
// approvals moves the call to approved (the caller then runs it with
// ExecuteApproval, or leaves it to ExecuteApproved); denying refuses it.
// Repeating a vote already recorded (a retried request) returns the call's
// state without recording anything. Errors are *Error: Forbidden when p may
// not vote (agents, other tenants, outside scope, own request), NotFound,
// Conflict when the request is no longer pending (expired, decided).
func (d *Dispatcher) Decide(ctx context.Context, p call.Principal, v Vote) (*State, error) {
	if p.Role != call.RoleApprover {
		msg := "only approver tokens can decide approvals"
		if p.Role == call.RoleAgent {
			msg = "an agent can never approve"
		}
		return nil, errorf(Forbidden, "not_an_approver", "%s", msg)
	}
	if d.approvals == nil {
		return nil, errorf(Unavailable, "unavailable", "approvals are not available")
	}
	v.Comment = strings.TrimSpace(v.Comment)
	if len(v.Comment) > maxComment {
		return nil, errorf(Invalid, "invalid_comment", "comment: at most %d bytes", maxComment)
	}
	scope, err := d.approvals.ApproverScope(ctx, p.TokenID)
	if err != nil {
		return nil, &Error{Kind: Unavailable, Code: "unavailable", Message: "cannot read the approver's scope", Err: err}
	}
	for attempt := 0; ; attempt++ {
		st, err := d.approvalCall(ctx, v.ApprovalID)
		if err != nil {
			return nil, err
		}
		if err := st.Approval.Authorize(p, scope, subject(st)); err != nil {
			return nil, errorf(Forbidden, "forbidden", "%s", err.Error())
		}
		if prev := st.Approval.VoteOf(p.Identity()); prev != nil {
			if prev.Approve == v.Approve {
				return st, nil // a retry: already recorded
			}
			return nil, errorf(Conflict, "already_voted", "%s already voted to %s approval %s", p.Identity(), verbOf(prev.Approve), v.ApprovalID)
		}
		now := d.now().UTC()
		switch {
		case st.Status == StatusExpired || (st.Status == StatusPending && st.ExpiresAt != nil && !now.Before(*st.ExpiresAt)):
			return nil, errorf(Conflict, "expired", "approval %s expired at %s", v.ApprovalID, st.ExpiresAt.UTC().Format(time.RFC3339))
		case st.Status != StatusPending:
			return nil, errorf(Conflict, "already_decided", "approval %s is already decided: the call is %s%s", v.ApprovalID, st.Status, decidedBy(st))
		}
		st.PrevStatus = StatusPending
		st.UpdatedAt = now
		st.Approval.Votes = append(st.Approval.Votes, approval.Vote{
			Approver: p.Identity(), Channel: v.Channel, Approve: v.Approve, At: now, Comment: v.Comment,
		})
		kind := audit.KindApproval
		if !v.Approve {
			kind = audit.KindDenial
			st.Status = StatusRefused
			st.Reason = fmt.Sprintf("denied by %s via %s at %s", p.Identity(), v.Channel, now.Format(time.RFC3339))
			if v.Comment != "" {
				st.Reason += ": " + v.Comment
			}
		} else if st.Approval.Approvals() >= st.Approval.MinApprovals {
			st.Status = StatusApproved
			st.Reason = fmt.Sprintf("approved by %s via %s at %s", approvers(st.Approval), v.Channel, now.Format(time.RFC3339))
		}
		rec := d.record(st, kind, st.Trigger)
		if st.Status == StatusRefused {
			rec.Outcome = audit.OutcomeRefused
		}
		err = d.store.Commit(ctx, rec, st)
		if errors.Is(err, ErrConflict) && attempt < 3 {
			continue // changed under us (another vote, an expiry): decide again on the new state
		}
		if errors.Is(err, ErrConflict) {
			return nil, errorf(Conflict, "conflict", "approval %s changed concurrently; try again", v.ApprovalID)
		}
		if err != nil {
			return nil, &Error{Kind: Unavailable, Code: "audit_unavailable", Message: "the vote could not be recorded", Err: err}
		}
		switch st.Status {
		case StatusApproved:
			d.resolved(ctx, st, ApprovalGranted, now)
		case StatusRefused:
			d.resolved(ctx, st, ApprovalDenied, now)
			d.finished(st, 0)
		}
		d.notify(st.ID)
		return st, nil
	}
}

func verbOf(approve bool) string {
	if approve {
		return "approve"
	}
	return "deny"
}

func decidedBy(st *State) string {
	if v := st.Approval.Last(); v != nil {
		return fmt.Sprintf(" (%s by %s via %s)", map[bool]string{true: "approved", false: "denied"}[v.Approve], v.Approver, v.Channel)
	}
	return ""
}

func approvers(r *approval.Request) string {
	var names []string
	for _, v := range r.Votes {
		if v.Approve {
			names = append(names, v.Approver)
		}
	}
	return strings.Join(names, ", ")
}

func subject(st *State) approval.Subject {
	return approval.Subject{Tenant: st.Tenant, Agent: st.Agent, Connector: st.Connector, Trigger: st.Trigger}
}

func (d *Dispatcher) approvalCall(ctx context.Context, id string) (*State, error) {
	st, err := d.approvals.CallByApproval(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && st.Approval == nil) {
		return nil, errorf(NotFound, "not_found", "no approval %q", id)
	}
	if err != nil {
		return nil, &Error{Kind: Unavailable, Code: "unavailable", Message: "cannot read the approval", Err: err}
	}
	return st, nil
}

// ExecuteApproval runs an approved call now, if nobody has claimed it yet,
// and returns its state: the outcome when this process ran it, the current
// state when another did or does.
func (d *Dispatcher) ExecuteApproval(ctx context.Context, st *State) (*State, error) {
	if st.Status != StatusApproved {
		return st, nil
	}
	out, err := d.claimAndRun(ctx, st)
	if errors.Is(err, ErrConflict) {
		// Claimed elsewhere: report what the store says.
		out, err = d.store.CallState(ctx, st.ID)
	}
	var de *Error
	if err != nil && !errors.As(err, &de) {
		return nil, &Error{Kind: Unavailable, Code: "audit_unavailable", Message: "the call is approved but could not be started now; warden retries it", Err: err}
	}
	return out, err
}

// ExecuteApproved claims and runs every approved call nobody has claimed:
// those approved through another process (the CLI) and those a crash left
// between approval and execution. It returns how many it ran.
func (d *Dispatcher) ExecuteApproved(ctx context.Context) (int, error) {
	if d.approvals == nil {
		return 0, nil
	}
	due, err := d.approvals.ApprovedCalls(ctx, 20)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, st := range due {
		_, err := d.claimAndRun(ctx, st)
		if errors.Is(err, ErrConflict) {
			continue // another process claimed it first
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// claimAndRun moves st from approved to running with a `started` record
// and, if this process won that conditional commit, executes it. It fails
// with ErrConflict when someone else claimed it.
func (d *Dispatcher) claimAndRun(ctx context.Context, st *State) (*State, error) {
	begun := time.Now()
	ctx, span := d.startSpan(resumeTrace(ctx, st), "warden.execute", st)
	out, err := d.claimAndRunTraced(ctx, st, begun)
	d.endSpan(span, out, err)
	return out, err
}

func (d *Dispatcher) claimAndRunTraced(ctx context.Context, st *State, begun time.Time) (*State, error) {
	snap := d.snap.Load()
	var exec Executor
	if snap != nil {
		exec = snap.Executors[st.Connector]
	}
	args, argErr := call.DecodeArgs(st.Args)
	// A kill switch set while the call waited for its humans still stops
	// it: approval does not outrank the kill switch.
	kill, err := d.store.Killed(ctx, st.Tenant, st.Agent)
	if err != nil {
		return nil, fmt.Errorf("kill switch: %w", err) // not claimed: the next sweep retries
	}
	now := d.now().UTC()
	st.PrevStatus = StatusApproved
	st.Status = StatusRunning
	st.UpdatedAt = now
	if kill != nil {
		st.Status = StatusRefused
		st.Decision = call.Deny
		st.Rules = []string{RuleKillSwitch}
		st.Reason = fmt.Sprintf("denied: killed by %s at %s after approval", kill.By, kill.At.UTC().Format(time.RFC3339))
		rec := d.record(st, audit.KindOutcome, st.Trigger)
		rec.Outcome = audit.OutcomeRefused
		if err := d.store.Commit(ctx, rec, st); err != nil {
			return nil, err
		}
		d.finished(st, time.Since(begun))
		d.notify(st.ID)
		return st, nil
	}
	if st.DecideOnly {
		// Asked of POST /v1/decide: the runtime runs the tool itself, so
		// approval makes the call decided (its outcome is reported), never
		// executed here.
		st.Status = StatusDecided
		rec := d.record(st, audit.KindDecisionOnly, st.Trigger)
		if err := d.store.Commit(ctx, rec, st); err != nil {
			return nil, err
		}
		d.notify(st.ID)
		return st, nil
	}
	if exec == nil || argErr != nil {
		// The connector left the config (or is no longer executed by
		// warden) since the call was decided: it cannot run.
		st.Status = StatusFailed
		st.Error = fmt.Sprintf("connector %q is not executable under config %s", st.Connector, versionOf(snap))
		if argErr != nil {
			st.Error = "the call's stored arguments could not be read"
			d.log.ErrorContext(ctx, "stored args unreadable", "call", st.ID, "err", argErr)
		}
		rec := d.record(st, audit.KindOutcome, st.Trigger)
		rec.Outcome = st.Status
		if err := d.store.Commit(ctx, rec, st); err != nil {
			return nil, err
		}
		d.finished(st, time.Since(begun))
		d.notify(st.ID)
		return st, nil
	}
	rec := d.record(st, audit.KindStarted, st.Trigger)
	if err := d.store.Commit(ctx, rec, st); err != nil {
		if !errors.Is(err, ErrConflict) {
			d.log.ErrorContext(ctx, "claiming an approved call failed", "call", st.ID, "err", err)
		}
		return nil, err
	}
	d.notify(st.ID)
	return d.execute(ctx, exec, st, Request{Connector: st.Connector, Action: st.Action, Args: args, Trigger: st.Trigger, begun: begun})
}

func versionOf(s *Snapshot) string {
	if s == nil || s.Engine == nil {
		return "(none)"
	}
	v := s.Engine.Version()
	return v[:min(12, len(v))]
}

// ApprovalView is an approval request with the context a human decides on.
type ApprovalView struct {
	ID           string          `json:"id"`
	CallID       string          `json:"call_id"`
	Status       string          `json:"status"`      // pending, approved, denied, expired
	CallStatus   string          `json:"call_status"` // the call's own status
	Tenant       string          `json:"tenant"`
	Agent        string          `json:"agent"`
	Connector    string          `json:"connector"`
	Action       string          `json:"action"`
	ActionType   string          `json:"action_type"`
	Environment  string          `json:"environment,omitempty"`
	Trigger      string          `json:"trigger,omitempty"`
	Args         jsonRaw         `json:"args"`
	Rules        []string        `json:"rules"`
	Reason       string          `json:"reason"`
	RequestedAt  time.Time       `json:"requested_at"`
	ExpiresAt    *time.Time      `json:"expires_at,omitempty"`
	MinApprovals int             `json:"min_approvals"`
	Approvers    [][]string      `json:"approvers,omitempty"`
	Votes        []approval.Vote `json:"votes"`
	Result       jsonRaw         `json:"result,omitempty"`
	Error        string          `json:"error,omitempty"`
}

type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("null"), nil
	}
	return j, nil
}

// View renders st's approval request; st must have one.
func View(st *State) ApprovalView {
	v := ApprovalView{
		ID: st.Approval.ID, CallID: st.ID, CallStatus: st.Status, Tenant: st.Tenant, Agent: st.Agent,
		Connector: st.Connector, Action: st.Action, ActionType: st.ActionType, Environment: st.Environment,
		Trigger: st.Trigger, Args: jsonRaw(st.Args), Rules: st.Rules, Reason: st.Reason,
		RequestedAt: st.CreatedAt, ExpiresAt: st.ExpiresAt, MinApprovals: st.Approval.MinApprovals,
		Approvers: st.Approval.Approvers, Votes: st.Approval.Votes, Result: jsonRaw(st.Result), Error: st.Error,
	}
	if v.Votes == nil {
		v.Votes = []approval.Vote{}
	}
	switch st.Status {
	case StatusPending:
		v.Status = "pending"
	case StatusExpired:
		v.Status = "expired"
	case StatusRefused:
		v.Status = "denied"
	default:
		v.Status = "approved"
	}
	return v
}

// Approvals lists the approval requests p may decide, newest first: the
// pending ones (status "pending") or all of them, decided or not (status
// ""); status may also be approved, denied or expired.
func (d *Dispatcher) Approvals(ctx context.Context, p call.Principal, status string, limit int) ([]ApprovalView, error) {
	if p.Role != call.RoleApprover {
		msg := "only approver tokens can read approvals"
		if p.Role == call.RoleAgent {
			msg = "an agent can never approve"
		}
		return nil, errorf(Forbidden, "not_an_approver", "%s", msg)
	}
	if d.approvals == nil {
		return nil, errorf(Unavailable, "unavailable", "approvals are not available")
	}
	callStatus := ""
	switch status {
	case "", "all":
		status = ""
	case "pending":
		callStatus = StatusPending
	case "denied":
		callStatus = StatusRefused
	case "expired":
		callStatus = StatusExpired
	case "approved":
	default:
		return nil, errorf(Invalid, "invalid_parameter", "status: must be pending, approved, denied, expired or all")
	}
	scope, err := d.approvals.ApproverScope(ctx, p.TokenID)
	if err != nil {
		return nil, &Error{Kind: Unavailable, Code: "unavailable", Message: "cannot read the approver's scope", Err: err}
	}
	if limit <= 0 {
		limit = 100
	}
	// Read more than asked: some rows are filtered out below.
	sts, err := d.approvals.ApprovalCalls(ctx, p.Tenant, callStatus, limit*4)
	if err != nil {
		return nil, &Error{Kind: Unavailable, Code: "unavailable", Message: "cannot read approvals", Err: err}
	}
	now := d.now()
	out := []ApprovalView{}
	for _, st := range sts {
		if st.Approval == nil || !p.InTenant(st.Tenant) || !scope.Allows(st.Agent, st.Connector) {
			continue
		}
		v := View(st)
		if status != "" && v.Status != status {
			continue
		}
		if v.Status == "pending" && st.ExpiresAt != nil && !now.Before(*st.ExpiresAt) {
			continue // expired, not yet swept: nobody can approve it any more
		}
		if v.Status == "pending" && st.Approval.Authorize(p, scope, subject(st)) != nil {
			continue // not this approver's to decide (own run, not among the rule's approvers)
		}
		out = append(out, v)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// Approval returns one approval request for p: any in p's tenant and scope.
func (d *Dispatcher) Approval(ctx context.Context, p call.Principal, id string) (ApprovalView, error) {
	if p.Role != call.RoleApprover {
		return ApprovalView{}, errorf(Forbidden, "not_an_approver", "only approver tokens can read approvals")
	}
	if d.approvals == nil {
		return ApprovalView{}, errorf(Unavailable, "unavailable", "approvals are not available")
	}
	st, err := d.approvalCall(ctx, id)
	if err != nil {
		return ApprovalView{}, err
	}
	scope, err := d.approvals.ApproverScope(ctx, p.TokenID)
	if err != nil {
		return ApprovalView{}, &Error{Kind: Unavailable, Code: "unavailable", Message: "cannot read the approver's scope", Err: err}
	}
	if !p.InTenant(st.Tenant) || !scope.Allows(st.Agent, st.Connector) {
		// As for calls: another tenant's ids are not confirmed to exist.
		return ApprovalView{}, errorf(NotFound, "not_found", "no approval %q", id)
	}
	return View(st), nil
}
