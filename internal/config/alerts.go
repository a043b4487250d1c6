package config

import (
	"errors"
	"fmt"
	"slices"

	"github.com/warden-dev/warden/internal/alert"
	"go.yaml.in/yaml/v3"
)

// Alerts is the `kind: alerts` document: thresholds over what warden does,
// sent through the notifiers of the `kind: approvals` document when a rule
// starts firing and again when it resolves (at most one such document).
//
//	kind: alerts
//	rules:
//	  - name: many-denials
//	    when: deny_rate > 0.2 over 5m            # see internal/alert.Parse
//	    notify: [webhook, slack]                 # or one of them
//	  - name: github-errors
//	    when: error_rate{connector=github} > 0.1 over 5m
//	    notify: slack
type Alerts struct {
	Pos   `json:"-"`
	Rules []*AlertRule `json:"rules"`
}

// AlertRule is one alert.
type AlertRule struct {
	Pos    `json:"-"`
	Name   string          `json:"name"`
	When   string          `json:"when"` // canonical form of Cond
	Notify []string        `json:"notify"`
	Cond   alert.Condition `json:"-"`

	whenPos   Pos
	notifyPos Pos
}

func (d *decoder) alerts(n *yaml.Node, cfg *Config) {
	a := &Alerts{Pos: d.pos(n)}
	ok := d.object(n, "alerts",
		kindField(),
		field{key: "rules", required: true, set: func(v *yaml.Node) { a.Rules = d.alertRules(v) }},
	)
	if !ok {
		return
	}
	if cfg.Alerts != nil {
		d.errorf(n, "duplicate alerts document (first defined at %s); write one", cfg.Alerts.Pos)
		return
	}
	cfg.Alerts = a
}

func (d *decoder) alertRules(n *yaml.Node) []*AlertRule {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "rules must be a list of {name, when, notify}, got %s", kindName(n))
		return nil
	}
	var out []*AlertRule
	seen := map[string]Pos{}
	for i, c := range n.Content {
		what := fmt.Sprintf("rules[%d]", i)
		r := &AlertRule{Pos: d.pos(d.resolve(c))}
		if !d.object(c, what,
			field{key: "name", required: true, set: d.name(&r.Name, what+".name")},
			field{key: "when", required: true, set: func(v *yaml.Node) { d.alertWhen(v, r, what+".when") }},
			field{key: "notify", required: true, set: func(v *yaml.Node) {
				r.notifyPos = d.pos(d.resolve(v))
				for _, ch := range d.strList(v, what+".notify") {
					switch {
					case ch != alert.ChannelWebhook && ch != alert.ChannelSlack:
						d.errorf(d.resolve(v), "%s: unknown channel %q; expected webhook or slack", what, ch)
					case slices.Contains(r.Notify, ch):
						d.errorf(d.resolve(v), "%s: %q listed twice", what, ch)
					default:
						r.Notify = append(r.Notify, ch)
					}
				}
			}},
		) {
			continue
		}
		if r.Name != "" {
			if prev, dup := seen[r.Name]; dup {
				d.errorf(d.resolve(c), "duplicate alert %q (first defined at %s)", r.Name, prev)
				continue
			}
			seen[r.Name] = r.Pos
		}
		if r.When != "" && len(r.Notify) > 0 {
			slices.Sort(r.Notify)
			out = append(out, r)
		}
	}
	return out
}

// alertWhen parses a rule's condition, pointing an error at the character
// where it is when the scalar is on one line.
func (d *decoder) alertWhen(v *yaml.Node, r *AlertRule, what string) {
	s, ok := d.str(v, what)
	if !ok {
		return
	}
	v = d.resolve(v)
	r.whenPos = d.pos(v)
	c, err := alert.Parse(s)
	var se *alert.SyntaxError
	if errors.As(err, &se) {
		p := d.pos(v)
		switch v.Style {
		case 0:
			p.Col += se.Offset
		case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
			p.Col += se.Offset + 1
		}
		*d.errs = append(*d.errs, &Error{Pos: p, Msg: fmt.Sprintf("%s: %s", what, se.Msg)})
		return
	}
	if err != nil {
		d.errorf(v, "%s: %v", what, err)
		return
	}
	r.Cond, r.When = c, c.String()
}

// linkAlerts checks what alert rules name in other documents: the
// channels they notify are configured, the agents and connectors their
// labels name exist.
func linkAlerts(cfg *Config, errs *Errors) {
	if cfg.Alerts == nil {
		return
	}
	add := func(p Pos, format string, args ...any) {
		*errs = append(*errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
	}
	agents := map[string]bool{}
	for _, a := range cfg.Agents {
		agents[a.Name] = true
	}
	connectors := map[string]bool{TypeClaudeCode: true}
	for _, c := range cfg.Connectors {
		connectors[c.Name] = true
	}
	for _, r := range cfg.Alerts.Rules {
		for _, ch := range r.Notify {
			switch {
			case ch == alert.ChannelSlack && (cfg.Approvals == nil || cfg.Approvals.Slack == nil):
				add(r.notifyPos, "alert %q notifies slack, but no kind: approvals document configures slack", r.Name)
			case ch == alert.ChannelWebhook && (cfg.Approvals == nil || len(cfg.Approvals.Webhooks) == 0):
				add(r.notifyPos, "alert %q notifies webhook, but no kind: approvals document configures webhooks", r.Name)
			}
		}
		if a, ok := r.Cond.Labels["agent"]; ok && !agents[a] {
			add(r.whenPos, "alert %q: unknown agent %q", r.Name, a)
		}
		if c, ok := r.Cond.Labels["connector"]; ok && !connectors[c] {
			add(r.whenPos, "alert %q: unknown connector %q", r.Name, c)
		}
	}
}
