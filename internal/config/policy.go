package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/condition"
	"go.yaml.in/yaml/v3"
)

// Reserved rule names: the engine reports them when an agent's permission
// (or the lack of one) produced the decision.
const (
	RulePermission  = "permission"
	RuleDefaultDeny = "default-deny"
)

func (d *decoder) policy(n *yaml.Node) *Policy {
	p := &Policy{Pos: d.pos(n)}
	var rulesNode *yaml.Node
	ok := d.object(n, "policy",
		kindField(),
		field{key: "name", required: true, set: d.name(&p.Name, "policy name")},
		field{key: "tenant", set: d.name(&p.Tenant, "tenant")},
		field{key: "description", set: d.strInto(&p.Description, "description")},
		field{key: "rules", required: true, set: func(v *yaml.Node) { rulesNode = v }},
	)
	if !ok || p.Name == "" {
		return nil
	}
	rn := d.resolve(rulesNode)
	if rn == nil {
		return p
	}
	if rn.Kind != yaml.SequenceNode {
		d.errorf(rn, "rules must be a list, got %s", kindName(rn))
		return p
	}
	for _, r := range rn.Content {
		if rule := d.rule(r, p); rule != nil {
			p.Rules = append(p.Rules, rule)
		}
	}
	return p
}

func (d *decoder) rule(n *yaml.Node, p *Policy) *Rule {
	r := &Rule{Pos: d.pos(d.resolve(n)), Policy: p.Name, Tenant: p.Tenant}
	var decisionNode, constraintsNode, approvalNode *yaml.Node
	ok := d.object(n, "rule",
		field{key: "name", required: true, set: d.name(&r.Name, "rule name")},
		field{key: "description", set: d.strInto(&r.Description, "description")},
		field{key: "reason", set: d.strInto(&r.Reason, "reason")},
		field{key: "match", set: func(v *yaml.Node) { d.match(v, &r.Match) }},
		field{key: "when", set: func(v *yaml.Node) {
			s, ok := d.str(v, "when")
			if !ok {
				return
			}
			r.When = s
			c, err := condition.Compile(s)
			if err != nil {
				d.errorf(d.resolve(v), "when: %v", err)
				return
			}
			r.Condition = c
		}},
		field{key: "decision", required: true, set: func(v *yaml.Node) {
			decisionNode = v
			s, ok := d.str(v, "decision")
			if !ok {
				return
			}
			r.Decision = call.Decision(s)
			if !r.Decision.Valid() {
				d.errorf(d.resolve(v), "unknown decision %q; expected ALLOW, ALLOW_WITH_CONSTRAINTS, REQUIRE_APPROVAL or DENY", s)
			}
		}},
		field{key: "constraints", set: func(v *yaml.Node) { constraintsNode = v; r.Constraints = d.constraints(v) }},
		field{key: "approval", set: func(v *yaml.Node) { approvalNode = v; r.Approval = d.approval(v) }},
	)
	if !ok || r.Name == "" {
		return nil
	}
	if r.Name == RulePermission || r.Name == RuleDefaultDeny {
		d.errorf(d.resolve(n), "rule name %q is reserved", r.Name)
	}
	if r.Decision == call.AllowWithConstraints && constraintsNode == nil && decisionNode != nil {
		d.errorf(d.resolve(decisionNode), "rule %q: ALLOW_WITH_CONSTRAINTS needs constraints", r.Name)
	}
	if constraintsNode != nil && r.Decision.Valid() && r.Decision != call.AllowWithConstraints {
		d.errorf(d.resolve(constraintsNode), "rule %q: constraints only apply to ALLOW_WITH_CONSTRAINTS, not %s", r.Name, r.Decision)
	}
	if approvalNode != nil && r.Decision.Valid() && r.Decision != call.RequireApproval {
		d.errorf(d.resolve(approvalNode), "rule %q: approval only applies to REQUIRE_APPROVAL, not %s", r.Name, r.Decision)
	}
	return r
}

// approval reads a rule's `approval: {timeout, approvers, min_approvals}`.
func (d *decoder) approval(n *yaml.Node) *Approval {
	a := &Approval{}
	d.object(n, "approval",
		field{key: "timeout", set: func(v *yaml.Node) { a.Timeout, _ = d.duration(v, "approval.timeout") }},
		field{key: "approvers", set: func(v *yaml.Node) {
			list := d.strList(v, "approval.approvers")
			if v := d.resolve(v); v != nil && v.Kind == yaml.SequenceNode && len(list) == 0 {
				d.errorf(v, "approval.approvers is an empty list, which nobody could satisfy; remove it to let any approver in scope decide")
			}
			for _, g := range list {
				if err := checkGlob(g); err != nil {
					d.errorf(d.resolve(v), "approval.approvers: %v", err)
				}
			}
			a.Approvers = list
		}},
		field{key: "min_approvals", set: func(v *yaml.Node) {
			i, ok := d.integer(v, "approval.min_approvals")
			if !ok {
				return
			}
			if i < 1 || i > 10 {
				d.errorf(d.resolve(v), "approval.min_approvals must be from 1 to 10, got %d", i)
				return
			}
			a.MinApprovals = int(i)
		}},
	)
	return a
}

func (d *decoder) match(n *yaml.Node, m *Match) {
	glob := func(dst *[]string, key string) field {
		return field{key: key, set: func(v *yaml.Node) {
			list := d.strList(v, "match."+key)
			if v := d.resolve(v); v != nil && v.Kind == yaml.SequenceNode && len(list) == 0 {
				d.errorf(v, "match.%s is an empty list, which would match nothing; remove it to match anything", key)
			}
			for _, g := range list {
				if err := checkGlob(g); err != nil {
					d.errorf(d.resolve(v), "match.%s: %v", key, err)
					continue
				}
				if key == "action_type" && !strings.ContainsAny(g, "*?[") && !call.ActionType(g).Valid() {
					d.errorf(d.resolve(v), "match.action_type: unknown action type %q; expected one of: %s", g, actionTypeList())
				}
			}
			*dst = list
		}}
	}
	d.object(n, "match",
		glob(&m.Tenant, "tenant"),
		glob(&m.Agent, "agent"),
		glob(&m.Connector, "connector"),
		glob(&m.Action, "action"),
		glob(&m.ActionType, "action_type"),
		glob(&m.Environment, "environment"),
	)
}

var argPathRE = regexp.MustCompile(`^args(\.[A-Za-z0-9_-]+)+$`)

func (d *decoder) constraints(n *yaml.Node) []*Constraint {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "constraints must be a mapping of args.PATH → {max, min, in, not_in, pattern, max_length}, got %s", kindName(n))
		return nil
	}
	var out []*Constraint
	for k, v := range d.pairs(n, "constraints") {
		if !argPathRE.MatchString(k.Value) {
			d.errorf(k, "constraint key %q must be an argument path such as args.replicas or args.repo.name", k.Value)
			continue
		}
		c := &Constraint{Pos: d.pos(k), Path: k.Value, Segments: strings.Split(k.Value, ".")[1:]}
		what := "constraint " + k.Value
		num := func(dst **float64, key string) field {
			return field{key: key, set: func(v *yaml.Node) {
				if f, ok := d.number(v, what+" "+key); ok {
					*dst = &f
				}
			}}
		}
		list := func(dst *[]any, key string) field {
			return field{key: key, set: func(v *yaml.Node) {
				x, ok := d.value(v, what+" "+key)
				l, isList := x.([]any)
				if ok && !isList {
					d.errorf(d.resolve(v), "%s %s must be a list", what, key)
					return
				}
				for _, e := range l {
					switch e.(type) {
					case map[string]any, []any:
						d.errorf(d.resolve(v), "%s %s entries must be strings, numbers, booleans or null", what, key)
						return
					}
				}
				*dst = l
			}}
		}
		d.object(v, what,
			num(&c.Max, "max"),
			num(&c.Min, "min"),
			list(&c.In, "in"),
			list(&c.NotIn, "not_in"),
			field{key: "pattern", set: func(v *yaml.Node) {
				s, ok := d.str(v, what+" pattern")
				if !ok {
					return
				}
				re, err := regexp.Compile(s)
				if err != nil {
					d.errorf(d.resolve(v), "%s pattern: invalid RE2 regular expression: %v", what, err)
					return
				}
				c.Pattern, c.Regexp = s, re
			}},
			field{key: "max_length", set: func(v *yaml.Node) {
				if i, ok := d.integer(v, what+" max_length"); ok {
					c.MaxLength = &i
				}
			}},
		)
		if c.Max == nil && c.Min == nil && c.In == nil && c.NotIn == nil && c.Regexp == nil && c.MaxLength == nil && d.resolve(v) != nil && d.resolve(v).Kind == yaml.MappingNode && len(d.resolve(v).Content) == 0 {
			d.errorf(k, "%s checks nothing; give at least one of max, min, in, not_in, pattern, max_length", what)
		}
		if c.Max != nil && c.Min != nil && *c.Min > *c.Max {
			d.errorf(k, "%s: min %v is greater than max %v", what, *c.Min, *c.Max)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Constraint) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// String describes the constraint for decision reasons, e.g.
// "args.replicas max 10".
func (c *Constraint) String() string {
	var parts []string
	if c.Min != nil {
		parts = append(parts, fmt.Sprintf("min %v", *c.Min))
	}
	if c.Max != nil {
		parts = append(parts, fmt.Sprintf("max %v", *c.Max))
	}
	if c.In != nil {
		parts = append(parts, fmt.Sprintf("in %v", c.In))
	}
	if c.NotIn != nil {
		parts = append(parts, fmt.Sprintf("not_in %v", c.NotIn))
	}
	if c.Regexp != nil {
		parts = append(parts, fmt.Sprintf("pattern %q", c.Pattern))
	}
	if c.MaxLength != nil {
		parts = append(parts, fmt.Sprintf("max_length %d", *c.MaxLength))
	}
	return c.Path + " " + strings.Join(parts, ", ")
}
