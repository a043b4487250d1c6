package app_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestPrometheusRulesUseRealMetrics: every metric the shipped example
// alerting rules (deploy/prometheus/warden-alerts.yaml) reference is one
// warden serves, by testdata/metrics.golden (histograms by their
// _bucket/_sum/_count series), and every label they match on exists on it.
func TestPrometheusRulesUseRealMetrics(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "metrics.golden"))
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string][]string{} // metric → its labels
	for _, line := range strings.Split(strings.TrimSpace(string(golden)), "\n") {
		name, rest, _ := strings.Cut(line, "{")
		labels[name] = strings.Split(strings.TrimSuffix(rest, "}"), ",")
	}

	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "warden-alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("warden-alerts.yaml: %v", err)
	}
	metricRE := regexp.MustCompile(`\bwarden_[a-z_]+`)
	selectorRE := regexp.MustCompile(`(warden_[a-z_]+)\{([^}]*)\}`)
	byRE := regexp.MustCompile(`by \(([^)]*)\)`)
	n := 0
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v: alert, expr and a summary are required", r)
			}
			base := func(m string) string {
				if _, ok := labels[m]; ok {
					return m
				}
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b := strings.TrimSuffix(m, suf); b != m && strings.HasSuffix(b, "_seconds") {
						if _, ok := labels[b]; ok {
							return b
						}
					}
				}
				return ""
			}
			var used []string
			for _, m := range metricRE.FindAllString(r.Expr, -1) {
				n++
				if base(m) == "" {
					t.Errorf("alert %s: metric %s is not in testdata/metrics.golden", r.Alert, m)
				}
				used = append(used, base(m))
			}
			for _, s := range selectorRE.FindAllStringSubmatch(r.Expr, -1) {
				for _, matcher := range strings.Split(s[2], ",") {
					l := strings.TrimSpace(strings.FieldsFunc(matcher, func(c rune) bool { return c == '=' || c == '!' || c == '~' })[0])
					if !contains(labels[base(s[1])], l) {
						t.Errorf("alert %s: %s has no label %q", r.Alert, s[1], l)
					}
				}
			}
			for _, b := range byRE.FindAllStringSubmatch(r.Expr, -1) {
				for _, l := range strings.Split(b[1], ",") {
					l = strings.TrimSpace(l)
					ok := l == "le"
					for _, m := range used {
						ok = ok || contains(labels[m], l)
					}
					if !ok {
						t.Errorf("alert %s: aggregates by %q, which none of its metrics has", r.Alert, l)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no metric referenced: the rules file is empty?")
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
