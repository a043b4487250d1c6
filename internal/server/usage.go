package server

import (
	"math"
	"net/http"
	"strconv"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
)

// usageRequest is the body of POST /v1/usage.
type usageRequest struct {
	RunID        string  `json:"run_id"`
	Model        string  `json:"model"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
}

// maxModelLen bounds the model name an agent may report.
const maxModelLen = 200

// postUsage records tokens and cost an agent's run used, towards its daily
// budgets, and answers with the day's totals.
func (s *Server) postUsage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.principal(r, call.RoleAgent)
	if err != nil {
		return err
	}
	var req usageRequest
	if err := decodeJSON(w, r, s.maxBody, &req); err != nil {
		return err
	}
	switch {
	case req.InputTokens < 0 || req.OutputTokens < 0 || req.CostUSD < 0:
		return newError(http.StatusBadRequest, "invalid_field", "input_tokens, output_tokens and cost_usd must not be negative")
	case req.InputTokens == 0 && req.OutputTokens == 0 && req.CostUSD == 0:
		return newError(http.StatusBadRequest, "invalid_field", "report at least one of input_tokens, output_tokens or cost_usd")
	case len(req.Model) > maxModelLen:
		return newError(http.StatusBadRequest, "invalid_field", "model: at most "+strconv.Itoa(maxModelLen)+" bytes")
	case len(req.RunID) > maxModelLen:
		return newError(http.StatusBadRequest, "invalid_field", "run_id: at most "+strconv.Itoa(maxModelLen)+" bytes")
	}
	sum, err := s.d.ReportUsage(r.Context(), p, dispatch.UsageReport{
		RunID: req.RunID, Model: req.Model, InputTokens: req.InputTokens, OutputTokens: req.OutputTokens,
		CostUSD: req.CostUSD, FrontEnd: "rest",
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sum)
	return nil
}

// limitStatus is the status of a call a rate limit refused: 429 Too Many
// Requests with Retry-After in whole seconds, so that ordinary HTTP clients
// back off; any other call keeps status. A budget refusal stays 403: it
// lasts until UTC midnight and retrying sooner cannot help (the reason and
// resets_at say when).
func limitStatus(w http.ResponseWriter, st *dispatch.State, status int) int {
	// Measured on the dispatcher's clock, which decided it.
	if st.Status != dispatch.StatusRefused || st.ResetsAt == nil || len(st.Rules) != 1 || st.Rules[0] != dispatch.RuleRateLimit {
		return status
	}
	secs := max(1, int64(math.Ceil(st.ResetsAt.Sub(st.CreatedAt).Seconds())))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	if status == http.StatusForbidden {
		return http.StatusTooManyRequests
	}
	return status
}
