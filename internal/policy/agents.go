package policy

import (
	"cmp"
	"slices"

	"github.com/warden-dev/warden/internal/config"
)

// Agents returns every configured agent, by tenant then name.
func (e *Engine) Agents() []*config.Agent {
	out := make([]*config.Agent, 0, len(e.agents))
	for _, a := range e.agents {
		out = append(out, a.Agent)
	}
	slices.SortFunc(out, func(a, b *config.Agent) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Name, b.Name))
	})
	return out
}
