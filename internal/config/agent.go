package config

import (
	"github.com/warden-dev/warden/internal/call"
	"go.yaml.in/yaml/v3"
)

func (d *decoder) agent(n *yaml.Node) *Agent {
	a := &Agent{Pos: d.pos(n), Tenant: call.DefaultTenant}
	ok := d.object(n, "agent",
		kindField(),
		field{key: "name", required: true, set: d.name(&a.Name, "agent name")},
		field{key: "tenant", set: d.name(&a.Tenant, "tenant")},
		field{key: "owner", set: d.strInto(&a.Owner, "owner")},
		field{key: "description", set: d.strInto(&a.Description, "description")},
		field{key: "runtime", set: d.strInto(&a.Runtime, "runtime")},
		field{key: "model", set: d.strInto(&a.Model, "model")},
		field{key: "permissions", set: func(v *yaml.Node) { a.Permissions = d.permissions(v, a) }},
		field{key: "budgets", set: func(v *yaml.Node) { d.budgets(v, &a.Budgets) }},
		field{key: "rate_limits", set: func(v *yaml.Node) { a.RateLimits = d.rateLimits(v, a) }}, // ratelimit.go
	)
	if !ok || a.Name == "" {
		return nil
	}
	return a
}

func (d *decoder) permissions(n *yaml.Node, a *Agent) map[string]map[string]Mode {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "permissions must be a mapping of connector → action → on|ask|off, got %s", kindName(n))
		return nil
	}
	out := map[string]map[string]Mode{}
	for ck, cv := range d.pairs(n, "permissions") {
		cv = d.resolve(cv)
		if cv == nil {
			return out
		}
		if cv.Kind != yaml.MappingNode {
			d.errorf(cv, "permissions.%s must be a mapping of action → on|ask|off, got %s", ck.Value, kindName(cv))
			continue
		}
		actions := map[string]Mode{}
		for ak, av := range d.pairs(cv, "permissions."+ck.Value) {
			av = d.resolve(av)
			if av == nil {
				return out
			}
			// Unquoted on/off are plain strings in YAML 1.2; accept them
			// whatever tag a YAML 1.1 habit gave them.
			m := Mode(av.Value)
			if av.Kind != yaml.ScalarNode || (m != On && m != Ask && m != Off) {
				d.errorf(av, "permissions.%s.%s must be on, ask or off, got %s", ck.Value, ak.Value, kindName(av))
				continue
			}
			actions[ak.Value] = m
			if a.permPos == nil {
				a.permPos = map[string]Pos{}
			}
			a.permPos[ck.Value] = d.pos(ck)
			a.permPos[ck.Value+"\x00"+ak.Value] = d.pos(ak)
		}
		out[ck.Value] = actions
	}
	return out
}

func (d *decoder) budgets(n *yaml.Node, b *Budgets) {
	d.object(n, "budgets",
		field{key: "calls_per_minute", set: func(v *yaml.Node) { b.CallsPerMinute, _ = d.integer(v, "budgets.calls_per_minute") }},
		field{key: "tokens_per_day", set: func(v *yaml.Node) { b.TokensPerDay, _ = d.integer(v, "budgets.tokens_per_day") }},
		field{key: "usd_per_day", set: func(v *yaml.Node) {
			if f, ok := d.number(v, "budgets.usd_per_day"); ok {
				if f < 0 {
					d.errorf(d.resolve(v), "budgets.usd_per_day must not be negative")
					return
				}
				b.USDPerDay = f
			}
		}},
	)
}
