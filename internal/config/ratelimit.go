package config

import (
	"go.yaml.in/yaml/v3"
)

// AllActions is the rate_limits action key that limits all of a
// connector's actions together.
const AllActions = "*"

// rateLimits decodes an agent's `rate_limits`: connector → action (or "*")
// → calls per minute, a positive integer. Names are checked against the
// connectors in link.
func (d *decoder) rateLimits(n *yaml.Node, a *Agent) map[string]map[string]int64 {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "rate_limits must be a mapping of connector → action → calls per minute, got %s", kindName(n))
		return nil
	}
	out := map[string]map[string]int64{}
	for ck, cv := range d.pairs(n, "rate_limits") {
		cv = d.resolve(cv)
		if cv == nil {
			return out
		}
		if cv.Kind != yaml.MappingNode {
			d.errorf(cv, "rate_limits.%s must be a mapping of action (or \"*\") → calls per minute, got %s", ck.Value, kindName(cv))
			continue
		}
		actions := map[string]int64{}
		for ak, av := range d.pairs(cv, "rate_limits."+ck.Value) {
			what := "rate_limits." + ck.Value + "." + ak.Value
			av = d.resolve(av)
			if av == nil {
				return out
			}
			var v int64
			if av.Kind != yaml.ScalarNode || av.Tag != "!!int" || av.Decode(&v) != nil || v < 1 {
				d.errorf(av, "%s must be a positive integer (calls per minute), got %s", what, kindName(av))
				continue
			}
			actions[ak.Value] = v
			if a.ratePos == nil {
				a.ratePos = map[string]Pos{}
			}
			a.ratePos[ck.Value] = d.pos(ck)
			a.ratePos[ck.Value+"\x00"+ak.Value] = d.pos(ak)
		}
		out[ck.Value] = actions
	}
	return out
}

// linkRateLimits checks that an agent's rate_limits name connectors and
// actions that exist.
func linkRateLimits(a *Agent, connectors map[string]*Connector, add func(Pos, string, ...any)) {
	for cname, actions := range a.RateLimits {
		c, ok := connectors[cname]
		if !ok {
			add(a.ratePos[cname], "agent %q: rate_limits name unknown connector %q", a.Name, cname)
			continue
		}
		for aname := range actions {
			if aname == AllActions {
				continue
			}
			if _, ok := c.ActionType(aname); !ok {
				add(a.ratePos[cname+"\x00"+aname], "agent %q: rate_limits: connector %q has no action %q", a.Name, cname, aname)
			}
		}
	}
}
