package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/config"
)

// TestREADMEExample: the config example users copy from the README loads.
func TestREADMEExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## Config as code")
	if !ok {
		t.Fatal(`README has no "## Config as code" section`)
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block in the Config as code section")
	}
	if _, err := config.Parse([]config.File{{Name: "README.md example", Data: []byte(example)}}); err != nil {
		t.Errorf("the README's config example does not load:\n%v", err)
	}
}
