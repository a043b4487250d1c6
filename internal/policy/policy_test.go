package policy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/policy"
)

func load(t testing.TB, dir string) *policy.Engine {
	t.Helper()
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	return policy.New(cfg)
}

// TestSemantics runs the data-driven cases under testdata/: every directory
// holds a config and *_test.yaml files in the `warden test` format.
func TestSemantics(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/*")
	if len(dirs) == 0 {
		t.Fatal("no testdata directories")
	}
	for _, dir := range dirs {
		eng := load(t, dir)
		files, _ := filepath.Glob(filepath.Join(dir, "*_test.yaml"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cases, err := config.ParseTests(config.File{Name: f, Data: data})
			if err != nil {
				t.Fatalf("parse %s: %v", f, err)
			}
			for _, tc := range cases {
				t.Run(tc.Name, func(t *testing.T) {
					c := tc.Call
					got := eng.Decide(&c)
					if got.Decision != tc.Expect.Decision {
						t.Errorf("%s: decision = %s (%s), want %s", tc.Pos, got.Decision, got.Reason, tc.Expect.Decision)
					}
					if tc.Expect.Rules != nil && !slices.Equal(got.Rules, tc.Expect.Rules) {
						t.Errorf("%s: rules = %v, want %v", tc.Pos, got.Rules, tc.Expect.Rules)
					}
					if got.Reason == "" {
						t.Errorf("%s: empty reason", tc.Pos)
					}
				})
			}
		}
	}
}

func TestReasons(t *testing.T) {
	eng := load(t, "testdata/semantics")
	tests := []struct {
		name string
		call call.Call
		want []string // substrings of the reason
	}{
		{"constraint named", call.Call{Agent: "bot", Connector: "svc", Action: "deploy",
			Args: map[string]any{"replicas": int64(12), "namespace": "app", "image": "registry.example.com/x"}},
			[]string{"args.replicas", "max 10", "deploy-limits", "12"}},
		{"missing argument named", call.Call{Agent: "bot", Connector: "svc", Action: "deploy",
			Args: map[string]any{"namespace": "app", "image": "registry.example.com/x"}},
			[]string{"args.replicas is missing"}},
		{"condition error in reason", call.Call{Agent: "bot", Connector: "svc", Action: "pay", Args: map[string]any{}},
			[]string{"big-payments", "amount_cents", "fail closed"}},
		{"off named", call.Call{Agent: "bot", Connector: "svc", Action: "read_secret"},
			[]string{"svc.read_secret", "off"}},
		{"default deny named", call.Call{Agent: "bot", Connector: "svc", Action: "unused"},
			[]string{"default deny"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := eng.Decide(&tt.call)
			for _, w := range tt.want {
				if !strings.Contains(got.Reason, w) {
					t.Errorf("reason %q does not mention %q", got.Reason, w)
				}
			}
		})
	}
}

func TestViolationsListed(t *testing.T) {
	eng := load(t, "testdata/semantics")
	got := eng.Decide(&call.Call{Agent: "bot", Connector: "svc", Action: "deploy",
		Args: map[string]any{"replicas": int64(20), "namespace": "kube-system", "image": "x"}})
	if got.Decision != call.Deny {
		t.Fatalf("decision = %s, want DENY", got.Decision)
	}
	var constraints []string
	for _, v := range got.Violations {
		constraints = append(constraints, v.Rule+": "+v.Constraint)
	}
	want := []string{
		`deploy-limits: args.image pattern "^registry\\.example\\.com/", max_length 64`,
		"deploy-limits: args.namespace in [app staging]",
		"deploy-limits: args.replicas min 1, max 10",
		"no-kube-system: args.namespace not_in [kube-system]",
	}
	if !slices.Equal(constraints, want) {
		t.Errorf("violations = %q, want %q", constraints, want)
	}
}

func TestDecideDoesNotMutateArgs(t *testing.T) {
	eng := load(t, "testdata/semantics")
	args := map[string]any{"amount_cents": int64(5), "currency": "EUR"}
	eng.Decide(&call.Call{Agent: "bot", Connector: "svc", Action: "pay", Args: args})
	if len(args) != 2 || args["amount_cents"] != int64(5) {
		t.Errorf("args changed: %v", args)
	}
}

func TestNilArgs(t *testing.T) {
	eng := load(t, "testdata/semantics")
	got := eng.Decide(&call.Call{Agent: "bot", Connector: "svc", Action: "pay"})
	if got.Decision != call.Deny {
		t.Errorf("decision = %s, want DENY (condition on a missing argument fails closed)", got.Decision)
	}
}
