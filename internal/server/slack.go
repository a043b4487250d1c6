package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/notify"
	"github.com/warden-dev/warden/internal/secret"
)

// SlackOptions configure POST /slack/interactions, Slack's interactivity
// callback for the Approve/Deny buttons warden posts.
type SlackOptions struct {
	// SigningSecret resolves the app's signing secret.
	SigningSecret func(ctx context.Context) (secret.Value, error)
	// Users maps Slack user ids to approver names (config `slack.users`).
	Users map[string]string
	// Approvers finds the approver token a name decides as.
	Approvers ApproverDirectory
	// Messages updates the message and talks to the user who clicked.
	Messages SlackMessages
}

// ApproverDirectory finds an approver by name; ErrNotFound-like errors are
// reported to the user as "no active approver token".
type ApproverDirectory interface {
	// ApproverByName returns the principal of the newest unrevoked
	// approver token with that name, or an error wrapping ErrNoApprover.
	ApproverByName(ctx context.Context, name string) (call.Principal, error)
}

// ErrNoApprover: the name has no active approver token.
var ErrNoApprover = errors.New("no active approver token")

// SlackMessages answers a click through its response_url.
type SlackMessages interface {
	Update(ctx context.Context, responseURL string, v dispatch.ApprovalView, note string) error
	Ephemeral(ctx context.Context, responseURL, text string) error
}

// slackDecideTimeout bounds the vote before the 200: Slack wants an answer
// within 3 s. The execution of an approved call and the message update
// happen after the answer.
const slackDecideTimeout = 2 * time.Second

type slackHandler struct {
	SlackOptions
	replays notify.ReplayGuard
	jobs    sync.WaitGroup // answers sent after the 200
}

func newSlackHandler(o *SlackOptions) *slackHandler {
	if o == nil {
		return nil
	}
	return &slackHandler{SlackOptions: *o}
}

// WaitBackground waits for work requests started to finish after their
// answer (executing a call approved from Slack, updating its message), or
// until ctx ends. Shutdown calls it once the HTTP server has stopped.
func (s *Server) WaitBackground(ctx context.Context) error {
	if s.slack == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		s.slack.jobs.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// POST /slack/interactions. The request must carry a valid Slack signature
// over the raw body, stamped within 300 s, not seen before. The clicking
// user must be mapped to an approver name whose active approver token may
// decide the request (same checks as the API); the vote is recorded with
// channel "slack" before the 200, and the call (if approved) runs and the
// message is updated after it.
func (s *Server) postSlackInteraction(w http.ResponseWriter, r *http.Request) error {
	h := s.slack
	if h == nil {
		return newError(http.StatusNotFound, "not_found", "Slack is not configured (kind: approvals, slack)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		return newError(http.StatusRequestEntityTooLarge, "too_large", "request body too large")
	}
	key, err := h.SigningSecret(r.Context())
	if err != nil {
		return &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "cannot read the Slack signing secret", cause: err}
	}
	now := s.now()
	sig := r.Header.Get(notify.HeaderSlackSignature)
	ts, err := notify.VerifySlack([]byte(key.Reveal()), r.Header.Get(notify.HeaderSlackTimestamp), sig, body, now)
	if err != nil {
		s.log.WarnContext(r.Context(), "slack request refused", "err", err, "remote", r.RemoteAddr)
		return newError(http.StatusUnauthorized, "bad_signature", err.Error())
	}
	if h.replays.Seen(sig, ts, now) {
		s.log.WarnContext(r.Context(), "slack request refused", "err", notify.ErrReplayed, "remote", r.RemoteAddr)
		return newError(http.StatusUnauthorized, "replayed", notify.ErrReplayed.Error())
	}
	in, err := notify.ParseInteraction(body)
	if err != nil {
		return newError(http.StatusBadRequest, "invalid_payload", err.Error())
	}

	st, p, refusal := s.slackVote(r.Context(), in)
	w.WriteHeader(http.StatusOK) // ack first: everything below talks back through response_url
	h.jobs.Add(1)
	go func() {
		defer h.jobs.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Minute)
		defer cancel()
		s.slackFollowUp(ctx, in, st, p, refusal)
	}()
	return nil
}

// slackVote maps the Slack user and votes; refusal is the text to show the
// user when it did not.
func (s *Server) slackVote(ctx context.Context, in *notify.Interaction) (*dispatch.State, call.Principal, string) {
	name, ok := s.slack.Users[in.UserID]
	if !ok {
		s.log.WarnContext(ctx, "slack user not mapped to an approver", "slack_user", in.UserID, "team", in.TeamID, "approval", in.ApprovalID)
		return nil, call.Principal{}, fmt.Sprintf("warden: your Slack user (%s) is not mapped to a warden approver; ask an operator to add it to slack.users.", in.UserID)
	}
	p, err := s.slack.Approvers.ApproverByName(ctx, name)
	if errors.Is(err, ErrNoApprover) {
		return nil, p, fmt.Sprintf("warden: %s has no active approver token, so cannot decide.", name)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "slack: reading the approver failed", "approver", name, "err", err)
		return nil, p, "warden: cannot check your approver identity right now; try again."
	}
	vctx, cancel := context.WithTimeout(ctx, slackDecideTimeout)
	defer cancel()
	st, err := s.d.Decide(vctx, p, dispatch.Vote{ApprovalID: in.ApprovalID, Approve: in.Approve, Channel: approval.ChannelSlack})
	if err != nil {
		_, _, msg := classify(err)
		s.log.InfoContext(ctx, "slack vote refused", "approver", p.Identity(), "approval", in.ApprovalID, "err", err)
		return nil, p, "warden refused your decision: " + msg
	}
	return st, p, ""
}

// slackFollowUp runs an approved call and answers in Slack.
func (s *Server) slackFollowUp(ctx context.Context, in *notify.Interaction, st *dispatch.State, p call.Principal, refusal string) {
	msgs := s.slack.Messages
	if in.ResponseURL == "" || msgs == nil {
		if st != nil && st.Status == dispatch.StatusApproved {
			_, _ = s.d.ExecuteApproval(ctx, st)
		}
		return
	}
	if refusal != "" {
		if err := msgs.Ephemeral(ctx, in.ResponseURL, refusal); err != nil {
			s.log.WarnContext(ctx, "slack: ephemeral answer failed", "err", err)
		}
		return
	}
	if st.Status == dispatch.StatusApproved {
		out, err := s.d.ExecuteApproval(ctx, st)
		if err != nil {
			s.log.ErrorContext(ctx, "slack: running the approved call failed; warden retries it", "call", st.ID, "err", err)
		} else {
			st = out
		}
	}
	v := s.d.RedactedView(st)
	if v.Status == "pending" {
		// More approvals needed: keep the buttons, tell the voter.
		msg := fmt.Sprintf("warden: your approval is recorded (%d of %d).", st.Approval.Approvals(), st.Approval.MinApprovals)
		if err := msgs.Ephemeral(ctx, in.ResponseURL, msg); err != nil {
			s.log.WarnContext(ctx, "slack: ephemeral answer failed", "err", err)
		}
		return
	}
	if err := msgs.Update(ctx, in.ResponseURL, v, decidedNote(v, p)); err != nil {
		s.log.WarnContext(ctx, "slack: updating the message failed", "approval", v.ID, "err", err)
	}
}

// decidedNote says who decided and what became of the call.
func decidedNote(v dispatch.ApprovalView, p call.Principal) string {
	verb := "Approved"
	if v.Status == "denied" {
		verb = "Denied"
	}
	by, channel, at := p.Identity(), approval.ChannelSlack, time.Now().UTC()
	if n := len(v.Votes); n > 0 {
		last := v.Votes[n-1]
		by, channel, at = last.Approver, last.Channel, last.At
	}
	note := fmt.Sprintf("%s by %s via %s at %s", verb, by, channel, at.Format(time.RFC3339))
	if v.Status == "approved" {
		switch v.CallStatus {
		case dispatch.StatusSucceeded:
			note += "; the call succeeded"
		case dispatch.StatusFailed:
			note += "; the call failed"
		default:
			note += "; the call is " + v.CallStatus
		}
	}
	return note
}
