package server

import (
	"net/http"
	"strconv"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
)

// GET /v1/approvals?status=pending|approved|denied|expired|all&limit=N
func (s *Server) getApprovals(w http.ResponseWriter, r *http.Request) error {
	p, err := s.principal(r, call.RoleApprover, call.RoleAgent, call.RoleAdmin, call.RoleAuditor)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return newError(http.StatusBadRequest, "invalid_parameter", "limit: must be an integer from 1 to 1000")
		}
		limit = n
	}
	list, err := s.d.Approvals(r.Context(), p, q.Get("status"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": list})
	return nil
}

// GET /v1/approvals/{id}
func (s *Server) getApproval(w http.ResponseWriter, r *http.Request) error {
	p, err := s.principal(r, call.RoleApprover, call.RoleAgent, call.RoleAdmin, call.RoleAuditor)
	if err != nil {
		return err
	}
	v, err := s.d.Approval(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

type voteRequest struct {
	Comment string `json:"comment"`
}

func (s *Server) postApprove(w http.ResponseWriter, r *http.Request) error { return s.vote(w, r, true) }
func (s *Server) postDeny(w http.ResponseWriter, r *http.Request) error    { return s.vote(w, r, false) }

// POST /v1/approvals/{id}/approve|deny {comment?}: the approval view after
// the vote; an approval that completes the request runs the call before
// answering, so the view carries its outcome.
func (s *Server) vote(w http.ResponseWriter, r *http.Request, approve bool) error {
	// Every role is authenticated here so that the dispatcher, not the
	// router, says why an agent or an admin may not vote.
	p, err := s.principal(r, call.RoleApprover, call.RoleAgent, call.RoleAdmin, call.RoleAuditor)
	if err != nil {
		return err
	}
	var req voteRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, s.maxBody, &req); err != nil {
			return err
		}
	}
	st, err := s.decide(r, p, dispatch.Vote{ApprovalID: r.PathValue("id"), Approve: approve, Comment: req.Comment, Channel: approval.ChannelAPI})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, dispatch.View(st))
	return nil
}

// decide records a vote and, when it approved the call, runs it here and
// now (exactly once: see internal/dispatch/approvals.go).
func (s *Server) decide(r *http.Request, p call.Principal, v dispatch.Vote) (*dispatch.State, error) {
	st, err := s.d.Decide(r.Context(), p, v)
	if err != nil {
		return nil, err
	}
	if st.Status == dispatch.StatusApproved {
		if st, err = s.d.ExecuteApproval(r.Context(), st); err != nil {
			return nil, err
		}
	}
	return st, nil
}
