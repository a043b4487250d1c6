package config

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
)

// link checks what spans documents: unique names and that permissions name
// connectors and actions that exist.
func link(cfg *Config, errs *Errors) {
	add := func(p Pos, format string, args ...any) {
		*errs = append(*errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
	}
	connectors := map[string]*Connector{TypeClaudeCode: ClaudeCode()}
	for _, c := range cfg.Connectors {
		if prev, ok := connectors[c.Name]; ok && !prev.Builtin {
			add(c.Pos, "duplicate connector %q (first defined at %s)", c.Name, prev.Pos)
			continue
		}
		connectors[c.Name] = c
	}
	agents := map[string]*Agent{}
	for _, a := range cfg.Agents {
		key := a.Tenant + "/" + a.Name
		if prev, ok := agents[key]; ok {
			add(a.Pos, "duplicate agent %q in tenant %q (first defined at %s)", a.Name, a.Tenant, prev.Pos)
			continue
		}
		agents[key] = a
		for cname, actions := range a.Permissions {
			c, ok := connectors[cname]
			if !ok {
				add(a.permPos[cname], "agent %q: permissions name unknown connector %q", a.Name, cname)
				continue
			}
			for aname := range actions {
				if _, ok := c.ActionType(aname); !ok {
					add(a.permPos[cname+"\x00"+aname], "agent %q: connector %q has no action %q", a.Name, cname, aname)
				}
			}
		}
		linkRateLimits(a, connectors, add) // ratelimit.go
	}
	policies := map[string]*Policy{}
	rules := map[string]*Rule{}
	for _, p := range cfg.Policies {
		key := p.Tenant + "/" + p.Name
		if prev, ok := policies[key]; ok {
			add(p.Pos, "duplicate policy %q (first defined at %s)", p.Name, prev.Pos)
			continue
		}
		policies[key] = p
		for _, r := range p.Rules {
			if prev, ok := rules[r.Name]; ok {
				add(r.Pos, "duplicate rule name %q (first defined at %s)", r.Name, prev.Pos)
				continue
			}
			rules[r.Name] = r
		}
	}
}

func sortConfig(cfg *Config) {
	slices.SortFunc(cfg.Agents, func(a, b *Agent) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Name, b.Name))
	})
	slices.SortFunc(cfg.Connectors, func(a, b *Connector) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(cfg.Policies, func(a, b *Policy) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Name, b.Name))
	})
}

// Canonical returns the canonical form the version hashes: JSON of the
// sorted, defaulted config, with map keys sorted and positions left out.
func Canonical(cfg *Config) ([]byte, error) {
	b, err := json.Marshal(struct {
		Format string `json:"format"`
		*Config
	}{"warden-config/v1", cfg})
	if err != nil {
		return nil, fmt.Errorf("canonical config: %w", err)
	}
	return b, nil
}

func version(cfg *Config) (string, error) {
	b, err := Canonical(cfg)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
