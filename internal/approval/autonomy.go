package approval

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Evidence for widening autonomy: how humans decided an agent's requests
// for one action, and what that suggests for its permission. warden never
// acts on it; a human edits the YAML and the change goes through review.
//
// Thresholds (conservative: one denial is evidence the gate catches
// something):
//   - any denial in the window                        → keep `ask`
//   - at least MinApprovedForOn approvals, no denial,
//     and at most a tenth of the requests expired     → consider `on`
//   - more requests expired than were decided         → review (nobody answers)
//   - otherwise                                       → keep `ask` (not enough evidence)

// MinApprovedForOn is how many approvals, without a denial, it takes to
// suggest `on`.
const MinApprovedForOn = 20

// Recommendations.
const (
	RecommendOn       = "consider-on"
	RecommendKeepAsk  = "keep-ask"
	RecommendReview   = "review-expiries"
	RecommendEvidence = "not-enough-evidence"
)

// Outcome is one approval request as decided (or not).
type Outcome struct {
	Tenant, Agent, Connector, Action string
	Status                           string // pending, approved, denied, expired
	RequestedAt                      time.Time
	DecidedAt                        time.Time // zero unless approved or denied
}

// Evidence summarizes one agent × connector × action.
type Evidence struct {
	Tenant         string        `json:"tenant"`
	Agent          string        `json:"agent"`
	Connector      string        `json:"connector"`
	Action         string        `json:"action"`
	Approved       int           `json:"approved"`
	Denied         int           `json:"denied"`
	Expired        int           `json:"expired"`
	Pending        int           `json:"pending"`
	MedianDecision time.Duration `json:"-"`
	MedianMS       int64         `json:"median_decision_ms"` // over approved and denied; 0 when none
	Recommendation string        `json:"recommendation"`     // one of the Recommend* constants
	Advice         string        `json:"advice"`             // the sentence a human reads
}

// Summarize groups outcomes by tenant, agent, connector and action, sorted,
// with a recommendation each; window names the period in the advice
// ("30 days").
func Summarize(outs []Outcome, window string) []Evidence {
	type key struct{ t, a, c, x string }
	groups := map[key]*Evidence{}
	times := map[key][]time.Duration{}
	for _, o := range outs {
		k := key{o.Tenant, o.Agent, o.Connector, o.Action}
		e := groups[k]
		if e == nil {
			e = &Evidence{Tenant: o.Tenant, Agent: o.Agent, Connector: o.Connector, Action: o.Action}
			groups[k] = e
		}
		switch o.Status {
		case "approved":
			e.Approved++
		case "denied":
			e.Denied++
		case "expired":
			e.Expired++
		default:
			e.Pending++
		}
		if (o.Status == "approved" || o.Status == "denied") && !o.DecidedAt.IsZero() {
			times[k] = append(times[k], max(0, o.DecidedAt.Sub(o.RequestedAt)))
		}
	}
	out := make([]Evidence, 0, len(groups))
	for k, e := range groups {
		e.MedianDecision = median(times[k])
		e.MedianMS = e.MedianDecision.Milliseconds()
		e.Recommendation, e.Advice = recommend(e, window)
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Evidence) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Agent, b.Agent), cmp.Compare(a.Connector, b.Connector), cmp.Compare(a.Action, b.Action))
	})
	return out
}

func recommend(e *Evidence, window string) (string, string) {
	total := e.Approved + e.Denied + e.Expired + e.Pending
	decided := e.Approved + e.Denied
	switch {
	case e.Denied > 0:
		return RecommendKeepAsk, fmt.Sprintf("%s: %d denied, %d approved in %s: keep `ask`", e.Action, e.Denied, e.Approved, window)
	case e.Approved >= MinApprovedForOn && e.Expired*10 <= total:
		return RecommendOn, fmt.Sprintf("%s: %d approved, 0 denied in %s: consider `on`", e.Action, e.Approved, window)
	case e.Expired > decided:
		return RecommendReview, fmt.Sprintf("%s: %d of %d requests expired unanswered in %s: review who is asked (keep `ask`)", e.Action, e.Expired, total, window)
	}
	return RecommendEvidence, fmt.Sprintf("%s: %d approved, 0 denied in %s: keep `ask` (%d approvals without a denial suggest `on`)", e.Action, e.Approved, window, MinApprovedForOn)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}
