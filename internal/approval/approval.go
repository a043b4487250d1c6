// Package approval holds the rules of warden's human checkpoint: what a
// pending approval request carries (who may decide it, how many must, the
// votes so far) and who may vote on it — approver tokens only, within their
// tenant and agent/connector scope, matching the approvers the rules name,
// and never on a request they started themselves.
//
// It is pure: the dispatcher applies these rules and persists the request
// inside the call's state; front ends (API, CLI, console, Slack) only name
// the channel a vote came through. Notifiers (Slack, webhooks) live beside
// the front ends, not here.
package approval

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/call"
)

// Channels a decision can arrive through; recorded with every vote.
const (
	ChannelAPI   = "api"
	ChannelCLI   = "cli"
	ChannelWeb   = "web"
	ChannelSlack = "slack"
)

// Request is a pending call's approval request, stored in the call's state
// so that it is written in the same transaction as the decision record.
type Request struct {
	ID string `json:"id"`
	// Approvers holds one glob list per rule that named approvers; a voter
	// must match a glob of every list. Empty: anyone in scope.
	Approvers    [][]string `json:"approvers,omitempty"`
	MinApprovals int        `json:"min_approvals"`
	Votes        []Vote     `json:"votes,omitempty"`
}

// Vote is one approver's decision.
type Vote struct {
	Approver string    `json:"approver"` // call.Principal.Identity(), e.g. approver:alice
	Channel  string    `json:"channel"`
	Approve  bool      `json:"approve"`
	At       time.Time `json:"at"`
	Comment  string    `json:"comment,omitempty"`
}

// New returns the request for a REQUIRE_APPROVAL decision whose rules asked
// spec (nil: one approval from anyone in scope).
func New(id string, spec *call.ApprovalSpec) *Request {
	r := &Request{ID: id, MinApprovals: 1}
	if spec != nil {
		r.Approvers = spec.Approvers
		r.MinApprovals = max(1, spec.MinApprovals)
	}
	return r
}

// Approvals counts the approving votes.
func (r *Request) Approvals() int {
	n := 0
	for _, v := range r.Votes {
		if v.Approve {
			n++
		}
	}
	return n
}

// VoteOf returns identity's vote, or nil.
func (r *Request) VoteOf(identity string) *Vote {
	for i := range r.Votes {
		if r.Votes[i].Approver == identity {
			return &r.Votes[i]
		}
	}
	return nil
}

// Last returns the most recent vote, or nil.
func (r *Request) Last() *Vote {
	if len(r.Votes) == 0 {
		return nil
	}
	return &r.Votes[len(r.Votes)-1]
}

// Scope limits an approver token to some agents and connectors (globs);
// an empty list allows any.
type Scope struct {
	Agents     []string `json:"agents,omitempty"`
	Connectors []string `json:"connectors,omitempty"`
}

// Allows reports whether the scope covers agent and connector.
func (s Scope) Allows(agent, connector string) bool {
	return anyMatch(s.Agents, agent) && anyMatch(s.Connectors, connector)
}

// Validate checks every glob at once.
func (s Scope) Validate() error {
	var bad []string
	for _, g := range append(append([]string(nil), s.Agents...), s.Connectors...) {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			bad = append(bad, fmt.Sprintf("%q", g))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("bad glob(s) %s", strings.Join(bad, ", "))
	}
	return nil
}

func (s Scope) String() string {
	if len(s.Agents) == 0 && len(s.Connectors) == 0 {
		return "*"
	}
	return fmt.Sprintf("agents=%s connectors=%s", list(s.Agents), list(s.Connectors))
}

func list(l []string) string {
	if len(l) == 0 {
		return "*"
	}
	return strings.Join(l, ",")
}

// Subject is what a vote is about.
type Subject struct {
	Tenant    string
	Agent     string
	Connector string
	Trigger   string // who or what started the run, as the agent said
}

// Refusal says why a principal may not vote on a request; its message is
// safe to show to the caller.
type Refusal struct{ Reason string }

func (e *Refusal) Error() string { return e.Reason }

// Authorize reports whether p, an approver with scope, may vote on r about
// s; the error is a *Refusal.
func (r *Request) Authorize(p call.Principal, scope Scope, s Subject) error {
	if p.Role != call.RoleApprover {
		if p.Role == call.RoleAgent {
			return &Refusal{"an agent can never approve"}
		}
		return &Refusal{"only approver tokens can decide approvals, not " + string(p.Role) + " tokens"}
	}
	if !p.InTenant(s.Tenant) {
		return &Refusal{fmt.Sprintf("this approver cannot decide for tenant %q", s.Tenant)}
	}
	if !scope.Allows(s.Agent, s.Connector) {
		return &Refusal{fmt.Sprintf("agent %q on connector %q is outside this approver's scope (%s)", s.Agent, s.Connector, scope)}
	}
	if self(p, s) {
		return &Refusal{"nobody approves a request from their own identity: this run was started by " + s.Trigger}
	}
	for _, globs := range r.Approvers {
		if !anyMatch(globs, p.Name) && !anyMatch(globs, p.Identity()) {
			return &Refusal{fmt.Sprintf("approver %s is not among the approvers the rules require (%s)", p.Identity(), strings.Join(globs, ", "))}
		}
	}
	return nil
}

// self reports whether the run was started by p: its trigger names p's name
// or identity (for example "alice", "approver:alice", "user:alice").
func self(p call.Principal, s Subject) bool {
	t := strings.ToLower(strings.TrimSpace(s.Trigger))
	if t == "" {
		return false
	}
	if strings.EqualFold(t, p.Identity()) {
		return true
	}
	if p.Name == "" {
		return false
	}
	name := strings.ToLower(p.Name)
	if t == name {
		return true
	}
	_, who, ok := strings.Cut(t, ":")
	return ok && who == name
}

// anyMatch reports whether s matches one of globs; no globs match anything.
func anyMatch(globs []string, s string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}
