package config

import "testing"

func TestAlertsDocument(t *testing.T) {
	src := `
kind: agent
name: bot
owner: o@example.com
permissions: {github: {create_pr: on}}
---
kind: connector
name: github
type: http
base_url: https://api.github.com
actions: {create_pr: {type: write, method: POST, path: /pulls}}
---
kind: approvals
webhooks: [{url: "https://hooks.example.com/w", secret: "env://WH"}]
---
kind: alerts
rules:
  - {name: denials, when: "deny_rate>0.2", notify: webhook}
  - {name: gh, when: 'error_rate{connector="github"} > 0.1 over 10m', notify: [webhook]}
`
	cfg, err := Parse([]File{{Name: "c.yaml", Data: []byte(src)}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Alerts == nil || len(cfg.Alerts.Rules) != 2 {
		t.Fatalf("alerts: %+v", cfg.Alerts)
	}
	for i, want := range []string{"deny_rate > 0.2 over 5m", "error_rate{connector=github} > 0.1 over 10m"} {
		if got := cfg.Alerts.Rules[i].When; got != want {
			t.Errorf("rule %d when = %q, want %q (canonical)", i, got, want)
		}
	}
	// The same rules written differently are the same version.
	alt := src[:len(src)-len(`  - {name: gh, when: 'error_rate{connector="github"} > 0.1 over 10m', notify: [webhook]}
`)] + "  - {name: gh, when: 'error_rate{connector=github}>0.1 over 600s', notify: webhook}\n"
	cfg2, err := Parse([]File{{Name: "c.yaml", Data: []byte(alt)}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg2.Version != cfg.Version {
		t.Errorf("versions differ for the same rules: %s vs %s", cfg.Version, cfg2.Version)
	}
}
