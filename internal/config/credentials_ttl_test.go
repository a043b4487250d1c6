package config

import (
	"strings"
	"testing"
	"time"
)

func TestCredentialsTTL(t *testing.T) {
	doc := func(ttl string) []File {
		return []File{{Name: "c.yaml", Data: []byte(`kind: connector
name: api
type: http
base_url: https://api.example
credentials: {token: env://TOKEN}
` + ttl + `
actions:
  get: {type: read}
`)}}
	}
	for in, want := range map[string]*time.Duration{"": nil, "credentials_ttl: 0s": new(time.Duration), "credentials_ttl: 5m": durationPtr(5 * time.Minute)} {
		cfg, err := Parse(doc(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		got := cfg.Connectors[0].CredentialsTTL
		if (got == nil) != (want == nil) || (got != nil && time.Duration(*got) != *want) {
			t.Errorf("%q: CredentialsTTL = %v, want %v", in, got, want)
		}
	}
	for _, bad := range []string{"credentials_ttl: -1s", "credentials_ttl: soon"} {
		if _, err := Parse(doc(bad)); err == nil || !strings.Contains(err.Error(), "credentials_ttl") || !strings.Contains(err.Error(), "c.yaml:") {
			t.Errorf("%q: err = %v, want a positioned credentials_ttl error", bad, err)
		}
	}
}

func durationPtr(d time.Duration) *time.Duration { return &d }
