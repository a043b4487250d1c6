// Package call holds the values every part of warden passes around for one
// agent call: the Call itself, the Decision kinds and the Verdict the policy
// engine produces. It depends on the standard library only, so that every
// other package can import it without pulling in I/O or wiring.
package call

import "time"

// DefaultTenant is the tenant of agents, calls and tokens that name none.
const DefaultTenant = "default"

// Decision is the outcome of a policy decision.
type Decision string

// The four decisions, from least to most restrictive.
const (
	Allow                Decision = "ALLOW"
	AllowWithConstraints Decision = "ALLOW_WITH_CONSTRAINTS"
	RequireApproval      Decision = "REQUIRE_APPROVAL"
	Deny                 Decision = "DENY"
)

// Decisions lists every valid decision, least restrictive first.
var Decisions = []Decision{Allow, AllowWithConstraints, RequireApproval, Deny}

// Rank orders decisions by restrictiveness: a higher rank wins. An unknown
// decision ranks above DENY so that it can never loosen anything.
func (d Decision) Rank() int {
	switch d {
	case Allow:
		return 0
	case AllowWithConstraints:
		return 1
	case RequireApproval:
		return 2
	case Deny:
		return 3
	}
	return 4
}

// Valid reports whether d is one of the four decisions.
func (d Decision) Valid() bool { return d.Rank() < 4 }

// Stricter returns the more restrictive of a and b.
func Stricter(a, b Decision) Decision {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}

// ActionType classifies what an action does; policies match on it.
type ActionType string

// The action types. External means the action leaves the building: messages,
// posts, payments.
const (
	Read     ActionType = "read"
	Write    ActionType = "write"
	Delete   ActionType = "delete"
	Execute  ActionType = "execute"
	Network  ActionType = "network"
	External ActionType = "external"
	Unknown  ActionType = "unknown"
)

// ActionTypes lists every valid action type.
var ActionTypes = []ActionType{Read, Write, Delete, Execute, Network, External, Unknown}

// Valid reports whether t is a known action type.
func (t ActionType) Valid() bool {
	for _, v := range ActionTypes {
		if v == t {
			return true
		}
	}
	return false
}

// Call is one request of an agent to run an action on a connector.
type Call struct {
	Tenant      string
	Agent       string
	Connector   string
	Action      string
	Args        map[string]any // a JSON object; numbers are int64 or float64
	Environment string
	RunID       string
	Time        time.Time
}

// Violation is one constraint a call's arguments broke.
type Violation struct {
	Rule       string `json:"rule"`
	Constraint string `json:"constraint"` // e.g. "args.replicas max 10"
	Message    string `json:"message"`    // e.g. "got 12"
}

// Verdict is what the policy engine decided about a call, and why.
type Verdict struct {
	Decision   Decision    `json:"decision"`
	Rules      []string    `json:"rules"`
	Reason     string      `json:"reason"`
	ActionType ActionType  `json:"action_type,omitempty"`
	Violations []Violation `json:"violations,omitempty"`
	// Approval is what a REQUIRE_APPROVAL decision asks of its approvers
	// when a rule set it; nil means the defaults (one approver, anyone in
	// scope, the server's timeout).
	Approval *ApprovalSpec `json:"approval,omitempty"`
}

// ApprovalSpec is what the rules that required approval ask: how long to
// wait, who may approve and how many must.
type ApprovalSpec struct {
	Timeout time.Duration `json:"timeout,omitempty"` // 0: the server's default
	// Approvers holds one glob list per rule that named approvers: an
	// approver must match a glob of every list (each rule has its say).
	Approvers    [][]string `json:"approvers,omitempty"`
	MinApprovals int        `json:"min_approvals,omitempty"` // 0 or 1: one approval
}
