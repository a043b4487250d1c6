package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/warden-dev/warden/internal/secret"
	"go.yaml.in/yaml/v3"
)

// Approvals is the `kind: approvals` document: where warden announces
// pending approval requests (at most one such document per config).
//
//	kind: approvals
//	slack:
//	  channel: C0123ABCD                 # channel id (or #name) to post to
//	  bot_token: env://SLACK_BOT_TOKEN   # secret reference: xoxb-… token with chat:write
//	  signing_secret: local://slack-signing
//	  base_url: https://slack.com/api    # default; a stand-in in tests
//	  users: {U012AB3CD: alice}          # Slack user id → approver token name
//	webhooks:
//	  - url: https://hooks.example.com/warden
//	    secret: env://WARDEN_WEBHOOK_SECRET
//
// A Slack user decides as the approver token of the name it maps to (the
// newest unrevoked one): that token's tenant and agent/connector scope, the
// rules' approver globs and the no-self-approval check apply exactly as
// through the API. Revoking the token stops the user's Slack clicks too.
type Approvals struct {
	Pos      `json:"-"`
	Slack    *Slack     `json:"slack,omitempty"`
	Webhooks []*Webhook `json:"webhooks,omitempty"`
}

// Slack configures the Slack approval channel.
type Slack struct {
	Pos           `json:"-"`
	Channel       string            `json:"channel"`
	BotToken      string            `json:"bot_token"`      // secret reference
	SigningSecret string            `json:"signing_secret"` // secret reference
	BaseURL       string            `json:"base_url"`
	Users         map[string]string `json:"users"` // Slack user id → approver name
}

// DefaultSlackBaseURL is Slack's Web API root.
const DefaultSlackBaseURL = "https://slack.com/api"

// Webhook is one generic webhook notifier.
type Webhook struct {
	Pos    `json:"-"`
	URL    string `json:"url"`
	Secret string `json:"secret"` // secret reference for the HMAC key
}

// slackUserRE is a Slack user id: U… or W… (Enterprise Grid), upper-case.
var slackUserRE = regexp.MustCompile(`^[UW][A-Z0-9]{2,31}$`)

// slackChannelRE is a channel id (C…, G…, D…) or a #name.
var slackChannelRE = regexp.MustCompile(`^([CGD][A-Z0-9]{2,31}|#[a-z0-9][a-z0-9_-]{0,79})$`)

func (d *decoder) approvals(n *yaml.Node, cfg *Config) {
	a := &Approvals{Pos: d.pos(n)}
	ok := d.object(n, "approvals",
		kindField(),
		field{key: "slack", set: func(v *yaml.Node) { a.Slack = d.slack(v) }},
		field{key: "webhooks", set: func(v *yaml.Node) { a.Webhooks = d.webhooks(v) }},
	)
	if !ok {
		return
	}
	if cfg.Approvals != nil {
		d.errorf(n, "duplicate approvals document (first defined at %s); write one", cfg.Approvals.Pos)
		return
	}
	cfg.Approvals = a
}

func (d *decoder) slack(n *yaml.Node) *Slack {
	s := &Slack{Pos: d.pos(n), BaseURL: DefaultSlackBaseURL}
	ok := d.object(n, "slack",
		field{key: "channel", required: true, set: func(v *yaml.Node) {
			c, ok := d.str(v, "slack.channel")
			if ok && !slackChannelRE.MatchString(c) {
				d.errorf(d.resolve(v), "slack.channel must be a channel id such as C0123ABCD or a #name, got %q", c)
				return
			}
			s.Channel = c
		}},
		field{key: "bot_token", required: true, set: d.secretRef(&s.BotToken, "slack.bot_token")},
		field{key: "signing_secret", required: true, set: d.secretRef(&s.SigningSecret, "slack.signing_secret")},
		field{key: "base_url", set: func(v *yaml.Node) {
			if u, ok := d.str(v, "slack.base_url"); ok {
				if d.httpURL(v, u, "slack.base_url") {
					s.BaseURL = strings.TrimRight(u, "/")
				}
			}
		}},
		field{key: "users", required: true, set: func(v *yaml.Node) {
			s.Users = d.stringMap(v, "slack.users", func(k, vn *yaml.Node, name string) {
				if !slackUserRE.MatchString(k.Value) {
					d.errorf(k, "slack.users: %q is not a Slack user id (U… or W…, as in the member's profile)", k.Value)
				}
				if !nameRE.MatchString(name) {
					d.errorf(vn, "slack.users.%s: %q is not a valid approver name", k.Value, name)
				}
			})
			if s.Users != nil && len(s.Users) == 0 {
				d.errorf(d.resolve(v), "slack.users is empty: nobody could decide from Slack; map Slack user ids to approver names")
			}
		}},
	)
	if !ok {
		return nil
	}
	return s
}

func (d *decoder) webhooks(n *yaml.Node) []*Webhook {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "webhooks must be a list of {url, secret}, got %s", kindName(n))
		return nil
	}
	var out []*Webhook
	seen := map[string]Pos{}
	for i, c := range n.Content {
		what := fmt.Sprintf("webhooks[%d]", i)
		w := &Webhook{Pos: d.pos(d.resolve(c))}
		var urlNode *yaml.Node
		if !d.object(c, what,
			field{key: "url", required: true, set: func(v *yaml.Node) {
				if u, ok := d.str(v, what+".url"); ok && d.httpURL(v, u, what+".url") {
					w.URL, urlNode = u, v
				}
			}},
			field{key: "secret", required: true, set: d.secretRef(&w.Secret, what+".secret")},
		) {
			continue
		}
		if w.URL != "" {
			if prev, dup := seen[w.URL]; dup {
				d.errorf(d.resolve(urlNode), "%s.url: duplicate webhook %q (first at %s)", what, w.URL, prev)
				continue
			}
			seen[w.URL] = w.Pos
		}
		out = append(out, w)
	}
	return out
}

// secretRef returns a setter that decodes a secret reference into dst.
func (d *decoder) secretRef(dst *string, what string) func(*yaml.Node) {
	return func(n *yaml.Node) {
		s, ok := d.str(n, what)
		if !ok {
			return
		}
		if _, err := secret.ParseRef(s); err != nil {
			d.errorf(d.resolve(n), "%s: %v", what, err)
			return
		}
		*dst = s
	}
}

// httpURL reports whether s is an absolute http(s) URL without
// credentials, query or fragment, reporting it at n otherwise.
func (d *decoder) httpURL(n *yaml.Node, s, what string) bool {
	u, err := url.Parse(s)
	if err != nil || !slices.Contains([]string{"http", "https"}, u.Scheme) || u.Host == "" {
		d.errorf(d.resolve(n), "%s must be an absolute http or https URL, got %q", what, s)
		return false
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		d.errorf(d.resolve(n), "%s must not carry credentials, a query or a fragment; put secrets in secret references", what)
		return false
	}
	return true
}
