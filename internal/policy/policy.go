// Package policy is warden's decision engine: given a validated config and a
// call, it decides ALLOW, ALLOW_WITH_CONSTRAINTS, REQUIRE_APPROVAL or DENY,
// names the rules that produced the decision and says why. It is pure: no
// I/O, no clocks (the call carries its time), no globals.
//
// Semantics:
//   - Default deny: an action the agent's permissions do not list is DENY.
//     An explicit `off` is DENY. `ask` is REQUIRE_APPROVAL, `on` is ALLOW.
//   - Rules can only tighten: the most restrictive of the permission and every
//     matching rule wins (DENY > REQUIRE_APPROVAL > ALLOW_WITH_CONSTRAINTS >
//     ALLOW). Nothing loosens an `off`; nothing turns an `ask` into ALLOW.
//   - A matching ALLOW_WITH_CONSTRAINTS rule checks the call's arguments; any
//     violation (or a constrained argument that is missing) is DENY, and the
//     reason names the constraint.
//   - A `when` condition that fails at run time is DENY with the error in the
//     reason (fail closed).
//   - An agent's permissions, and the rules of a policy with a tenant, apply
//     only to that tenant's calls.
package policy

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/condition"
	"github.com/warden-dev/warden/internal/config"
)

// Engine decides calls under one config version. It is immutable and safe
// for concurrent use; a new config means a new Engine.
type Engine struct {
	version    string
	agents     map[agentKey]*agent
	connectors map[string]*config.Connector
	rules      []*rule
	// byConnector lists, in config order, the indexes of the rules whose
	// match names a connector exactly; wild lists the rest (no connector,
	// or a glob). A decision only visits its connector's list merged with
	// wild, so its cost follows the rules that could match, not all rules.
	byConnector map[string][]int
	wild        []int
}

type agentKey struct{ tenant, name string }

type agent struct {
	*config.Agent
	cel map[string]any // what `agent` is in CEL conditions
}

type rule struct {
	*config.Rule
	tenant      matcher
	agent       matcher
	connector   matcher
	action      matcher
	actionType  matcher
	environment matcher
}

// New compiles an engine for cfg. cfg must come from config.Load or
// config.Parse, which has already validated and compiled every rule.
func New(cfg *config.Config) *Engine {
	e := &Engine{
		version:     cfg.Version,
		agents:      make(map[agentKey]*agent, len(cfg.Agents)),
		connectors:  make(map[string]*config.Connector, len(cfg.Connectors)+1),
		byConnector: map[string][]int{},
	}
	e.connectors[config.TypeClaudeCode] = config.ClaudeCode()
	for _, c := range cfg.Connectors {
		e.connectors[c.Name] = c
	}
	for _, a := range cfg.Agents {
		e.agents[agentKey{a.Tenant, a.Name}] = &agent{Agent: a, cel: map[string]any{
			"name": a.Name, "tenant": a.Tenant, "owner": a.Owner, "runtime": a.Runtime, "model": a.Model,
		}}
	}
	for _, p := range cfg.Policies {
		for _, r := range p.Rules {
			cr := &rule{
				Rule:        r,
				agent:       compile(r.Match.Agent),
				connector:   compile(r.Match.Connector),
				action:      compile(r.Match.Action),
				actionType:  compile(r.Match.ActionType),
				environment: compile(r.Match.Environment),
			}
			tenants := r.Match.Tenant
			if r.Tenant != "" {
				// The policy's tenant and the rule's own match must both hold;
				// the policy's is checked first as a plain equality.
				cr.tenant = compile(tenants)
				cr.tenant.policyTenant = r.Tenant
			} else {
				cr.tenant = compile(tenants)
			}
			idx := len(e.rules)
			e.rules = append(e.rules, cr)
			if len(cr.connector.exact) > 0 && len(cr.connector.globs) == 0 {
				for _, name := range cr.connector.exact {
					e.byConnector[name] = append(e.byConnector[name], idx)
				}
			} else {
				e.wild = append(e.wild, idx)
			}
		}
	}
	return e
}

// candidates yields, in config order, the rules that may match connector.
func (e *Engine) candidates(connector string) func(yield func(*rule) bool) {
	return func(yield func(*rule) bool) {
		a, b := e.byConnector[connector], e.wild
		for len(a) > 0 || len(b) > 0 {
			var i int
			if len(b) == 0 || (len(a) > 0 && a[0] < b[0]) {
				i, a = a[0], a[1:]
			} else {
				i, b = b[0], b[1:]
			}
			if !yield(e.rules[i]) {
				return
			}
		}
	}
}

// Version is the config version this engine decides under.
func (e *Engine) Version() string { return e.version }

// Connector returns a connector by name, including the built-in claude-code.
func (e *Engine) Connector(name string) (*config.Connector, bool) {
	c, ok := e.connectors[name]
	return c, ok
}

// Agent returns an agent by tenant and name.
func (e *Engine) Agent(tenant, name string) (*config.Agent, bool) {
	if tenant == "" {
		tenant = call.DefaultTenant
	}
	a, ok := e.agents[agentKey{tenant, name}]
	if !ok {
		return nil, false
	}
	return a.Agent, true
}

// Decide decides c. It never fails: anything it cannot decide is DENY with
// the reason.
func (e *Engine) Decide(c *call.Call) call.Verdict {
	tenant := c.Tenant
	if tenant == "" {
		tenant = call.DefaultTenant
	}
	a, ok := e.agents[agentKey{tenant, c.Agent}]
	if !ok {
		return deny(config.RuleDefaultDeny, "", fmt.Sprintf("unknown agent %q in tenant %q", c.Agent, tenant))
	}
	conn, ok := e.connectors[c.Connector]
	if !ok {
		return deny(config.RuleDefaultDeny, "", fmt.Sprintf("unknown connector %q", c.Connector))
	}
	at, ok := conn.ActionType(c.Action)
	if !ok {
		return deny(config.RuleDefaultDeny, "", fmt.Sprintf("connector %q has no action %q", c.Connector, c.Action))
	}
	mode, listed := a.Permissions[c.Connector][c.Action]
	switch {
	case !listed:
		return deny(config.RuleDefaultDeny, at, fmt.Sprintf("agent %q has no permission for %s.%s (default deny)", c.Agent, c.Connector, c.Action))
	case mode == config.Off:
		return deny(config.RulePermission, at, fmt.Sprintf("agent %q's permission for %s.%s is off", c.Agent, c.Connector, c.Action))
	}
	base := call.Allow
	if mode == config.Ask {
		base = call.RequireApproval
	}

	var (
		matched    []*rule
		violations []call.Violation
		in         *condition.Input
	)
	final := base
	for r := range e.candidates(c.Connector) {
		if !r.tenant.match(tenant) || !r.agent.match(c.Agent) || !r.connector.match(c.Connector) ||
			!r.action.match(c.Action) || !r.actionType.match(string(at)) || !r.environment.match(c.Environment) {
			continue
		}
		if r.Condition != nil {
			if in == nil {
				in = input(a, c, tenant, at)
			}
			ok, err := r.Condition.Eval(in)
			if err != nil {
				return deny(r.Name, at, fmt.Sprintf("rule %q: condition %q failed: %v (fail closed)", r.Name, r.When, err))
			}
			if !ok {
				continue
			}
		}
		matched = append(matched, r)
		final = call.Stricter(final, r.Decision)
		if r.Decision == call.AllowWithConstraints {
			for _, k := range r.Constraints {
				if msg := check(k, c.Args); msg != "" {
					violations = append(violations, call.Violation{Rule: r.Name, Constraint: k.String(), Message: msg})
				}
			}
		}
	}
	if len(violations) > 0 {
		return constraintDenial(violations, at)
	}
	v := call.Verdict{Decision: final, ActionType: at}
	var reasons []string
	if base == final {
		v.Rules = append(v.Rules, config.RulePermission)
		reasons = append(reasons, fmt.Sprintf("agent %q's permission for %s.%s is %s", c.Agent, c.Connector, c.Action, mode))
	}
	for _, r := range matched {
		if r.Decision != final {
			continue
		}
		v.Rules = append(v.Rules, r.Name)
		if r.Approval != nil {
			v.Approval = mergeApproval(v.Approval, r.Approval)
		}
		if r.Reason != "" {
			reasons = append(reasons, fmt.Sprintf("rule %q: %s", r.Name, r.Reason))
		} else {
			reasons = append(reasons, fmt.Sprintf("rule %q", r.Name))
		}
	}
	v.Reason = verb(final) + strings.Join(reasons, "; ")
	return v
}

func verb(d call.Decision) string {
	switch d {
	case call.Allow:
		return "allowed: "
	case call.AllowWithConstraints:
		return "allowed within constraints: "
	case call.RequireApproval:
		return "approval required: "
	}
	return "denied: "
}

func deny(rule string, at call.ActionType, reason string) call.Verdict {
	return call.Verdict{Decision: call.Deny, Rules: []string{rule}, Reason: "denied: " + reason, ActionType: at}
}

func constraintDenial(vs []call.Violation, at call.ActionType) call.Verdict {
	v := call.Verdict{Decision: call.Deny, ActionType: at, Violations: vs}
	var parts []string
	for _, x := range vs {
		if len(v.Rules) == 0 || v.Rules[len(v.Rules)-1] != x.Rule {
			v.Rules = append(v.Rules, x.Rule)
		}
		parts = append(parts, fmt.Sprintf("constraint %s violated (%s) by rule %q", x.Constraint, x.Message, x.Rule))
	}
	v.Reason = "denied: " + strings.Join(parts, "; ")
	return v
}

func input(a *agent, c *call.Call, tenant string, at call.ActionType) *condition.Input {
	now := c.Time
	if now.IsZero() {
		now = time.Unix(0, 0).UTC()
	}
	return &condition.Input{
		Agent: a.cel,
		Call: map[string]any{
			"tenant": tenant, "agent": c.Agent, "connector": c.Connector, "action": c.Action,
			"action_type": string(at), "environment": c.Environment, "run_id": c.RunID,
		},
		Args: c.Args,
		Env:  c.Environment,
		Now:  now,
	}
}

// matcher matches a name against exact names and globs. The zero value
// matches anything.
type matcher struct {
	policyTenant string
	exact        []string
	globs        []string
}

func compile(patterns []string) matcher {
	var m matcher
	for _, p := range patterns {
		if strings.ContainsAny(p, `*?[\`) {
			m.globs = append(m.globs, p)
		} else {
			m.exact = append(m.exact, p)
		}
	}
	return m
}

func (m *matcher) match(s string) bool {
	if m.policyTenant != "" && m.policyTenant != s {
		return false
	}
	if m.exact == nil && m.globs == nil {
		return true
	}
	for _, e := range m.exact {
		if e == s {
			return true
		}
	}
	for _, g := range m.globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

// mergeApproval tightens spec with one more REQUIRE_APPROVAL rule's
// approval section: the shortest timeout, the most approvals, and every
// rule's approver list must be satisfied.
func mergeApproval(spec *call.ApprovalSpec, a *config.Approval) *call.ApprovalSpec {
	if spec == nil {
		spec = &call.ApprovalSpec{}
	}
	if t := time.Duration(a.Timeout); t > 0 && (spec.Timeout == 0 || t < spec.Timeout) {
		spec.Timeout = t
	}
	if len(a.Approvers) > 0 {
		spec.Approvers = append(spec.Approvers, a.Approvers)
	}
	spec.MinApprovals = max(spec.MinApprovals, a.MinApprovals)
	return spec
}
