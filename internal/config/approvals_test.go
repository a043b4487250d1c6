package config_test

import (
	"testing"

	"github.com/warden-dev/warden/internal/config"
)

const approvalsDoc = `kind: approvals
slack:
  channel: C0123ABCD
  bot_token: env://SLACK_BOT_TOKEN
  signing_secret: local://slack-signing
  users: {U0123ABC: alice, W0456DEF: bob}
webhooks:
  - {url: "https://hooks.example.com/warden/", secret: env://HOOK}
`

// TestApprovalsDocument: the notifier section parses with its defaults and
// is part of the version.
func TestApprovalsDocument(t *testing.T) {
	base, err := parse(t, agentDoc+"---\n"+connectorDoc+"---\n"+policyDoc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parse(t, agentDoc+"---\n"+connectorDoc+"---\n"+policyDoc, approvalsDoc)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Approvals
	if a == nil || a.Slack == nil {
		t.Fatalf("Approvals = %+v, want a slack section", a)
	}
	if got, want := a.Slack.BaseURL, config.DefaultSlackBaseURL; got != want {
		t.Errorf("base_url = %q, want default %q", got, want)
	}
	if got, want := a.Slack.Users["W0456DEF"], "bob"; got != want {
		t.Errorf("users[W0456DEF] = %q, want %q", got, want)
	}
	if len(a.Webhooks) != 1 || a.Webhooks[0].Secret != "env://HOOK" {
		t.Errorf("webhooks = %+v, want one with secret env://HOOK", a.Webhooks)
	}
	if cfg.Version == base.Version {
		t.Error("adding an approvals document did not change the config version")
	}
	other, err := parse(t, agentDoc+"---\n"+connectorDoc+"---\n"+policyDoc, approvalsDoc+"  - {url: \"https://b.example\", secret: env://B}\n")
	if err != nil {
		t.Fatal(err)
	}
	if other.Version == cfg.Version {
		t.Error("adding a webhook did not change the config version")
	}
}
