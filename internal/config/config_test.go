package config_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestBrokenGolden loads every directory under testdata/broken and compares
// the full error list with its .golden file.
func TestBrokenGolden(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/broken/*")
	if len(dirs) == 0 {
		t.Fatal("no broken configs")
	}
	for _, dir := range dirs {
		if filepath.Ext(dir) == ".golden" {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			_, err := config.Load(dir)
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load(%s) = %v, want config.Errors", dir, err)
			}
			got := err.Error() + "\n"
			golden := dir + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s:\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			for _, e := range errs {
				if e.Pos.Line == 0 && !strings.HasPrefix(e.Msg, "no agent") {
					t.Errorf("error without a line: %v", e)
				}
			}
		})
	}
}

func parse(t *testing.T, files ...string) (*config.Config, error) {
	t.Helper()
	var fs []config.File
	for i, f := range files {
		fs = append(fs, config.File{Name: filepath.Join("f", string(rune('a'+i))+".yaml"), Data: []byte(f)})
	}
	return config.Parse(fs)
}

const agentDoc = `kind: agent
name: a
owner: o@example.com
permissions:
  c: {get: on, put: ask}
`

const connectorDoc = `kind: connector
name: c
type: http
base_url: https://example.com
actions:
  get: {type: read}
  put: {type: write, method: PUT, path: "/x/{args.id}"}
`

const policyDoc = `kind: policy
name: p
rules:
  - name: r1
    match: {action: put}
    when: 'args.id != ""'
    decision: REQUIRE_APPROVAL
  - name: r2
    match: {action: get}
    decision: ALLOW_WITH_CONSTRAINTS
    constraints:
      args.n: {max: 3}
      args.m: {in: [a, b]}
`

// TestVersionStable: the version depends on meaning only.
func TestVersionStable(t *testing.T) {
	base, err := parse(t, agentDoc+"---\n"+connectorDoc+"---\n"+policyDoc)
	if err != nil {
		t.Fatal(err)
	}
	reordered := `# a comment
kind:   policy
rules:
  - decision: REQUIRE_APPROVAL
    when: 'args.id != ""'
    name: r1
    match: {action: put}
  - name: r2
    constraints:
      args.m: {in: [a, b]}
      args.n: {max: 3.0}
    decision: ALLOW_WITH_CONSTRAINTS
    match:
      action: get
name: p
`
	tests := []struct {
		name  string
		files []string
	}{
		{"split into files", []string{policyDoc, connectorDoc, agentDoc}},
		{"keys reordered, comments, flow vs block", []string{connectorDoc, reordered + "---\n" + agentDoc}},
		{"explicit default tenant", []string{connectorDoc, policyDoc, agentDoc + "tenant: default\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(t, tt.files...)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != base.Version {
				a, _ := config.Canonical(base)
				b, _ := config.Canonical(got)
				t.Errorf("version %s, want %s\n%s\n%s", got.Version, base.Version, a, b)
			}
		})
	}
	changed := []struct {
		name  string
		files []string
	}{
		{"rule order", []string{agentDoc, connectorDoc, strings.Replace(strings.Replace(policyDoc, "r1", "rX", 1), "r2", "r1", 1)}},
		{"permission", []string{strings.Replace(agentDoc, "put: ask", "put: on", 1), connectorDoc, policyDoc}},
		{"constraint bound", []string{agentDoc, connectorDoc, strings.Replace(policyDoc, "max: 3", "max: 4", 1)}},
	}
	for _, tt := range changed {
		t.Run("changes/"+tt.name, func(t *testing.T) {
			got, err := parse(t, tt.files...)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version == base.Version {
				t.Errorf("version unchanged after changing %s", tt.name)
			}
		})
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("agents/a.yml", agentDoc)
	write("connectors/deep/c.yaml", connectorDoc)
	write("p.yaml", "# empty first document\n---\n"+policyDoc)
	write("p_test.yaml", "tests: []\n")         // a test file: skipped
	write(".hidden/x.yaml", "kind: nonsense\n") // hidden: skipped
	write("README.md", "not yaml")
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Agents) != 1 || len(cfg.Connectors) != 1 || len(cfg.Policies) != 1 {
		t.Errorf("loaded %d agents, %d connectors, %d policies; want 1 each", len(cfg.Agents), len(cfg.Connectors), len(cfg.Policies))
	}
	if cfg.Agents[0].Tenant != "default" {
		t.Errorf("tenant = %q, want default", cfg.Agents[0].Tenant)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		dir  func(t *testing.T) string
		want string
	}{
		{"missing directory", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, "no such file"},
		{"empty directory", func(t *testing.T) string { return t.TempDir() }, "holds no *.yaml"},
		{"only empty documents", func(t *testing.T) string {
			d := t.TempDir()
			os.WriteFile(filepath.Join(d, "x.yaml"), []byte("# nothing\n---\n"), 0o644)
			return d
		}, "no agent, connector or policy documents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(tt.dir(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestParseTests(t *testing.T) {
	_, err := config.ParseTests(config.File{Name: "t.yaml", Data: []byte(`tests:
  - name: x
    call: {agent: a, connector: c, action: get, args: [1], time: yesterday}
    expect: {decision: allow}
  - call: {agent: a}
    expect: {rules: r}
`)})
	want := `t.yaml:3:55: call.args must be a mapping
t.yaml:3:66: call.time must be an RFC 3339 time such as 2026-11-21T03:00:00Z, got "yesterday"
t.yaml:4:24: unknown decision "allow"; expected ALLOW, ALLOW_WITH_CONSTRAINTS, REQUIRE_APPROVAL or DENY
t.yaml:5:5: test is missing required key "name"
t.yaml:5:11: call is missing required key "connector"
t.yaml:5:11: call is missing required key "action"
t.yaml:6:13: expect is missing required key "decision"`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

// TestHostileYAML: aliases cannot make the loader loop, nest forever or
// explode; each input fails with a positioned error.
func TestHostileYAML(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"self-referencing alias", "x: &a [*a, *a]\nkind: connector\nname: c\ntype: http\nbase_url: http://x\nactions: {a: {type: read, input_schema: {p: *a}}}\n", "levels deep"},
		{"billion laughs", "kind: connector\nname: c\ntype: http\nbase_url: http://x\nl0: &l0 [a, a, a, a, a, a, a, a, a, a]\nl1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]\nl2: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]\nl3: &l3 [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]\nl4: &l4 [*l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3]\nl5: &l5 [*l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4]\nactions: {a: {type: read, input_schema: {p: *l5}}}\n", "more than"},
		{"merge key", "base: &b {name: a}\nkind: agent\n<<: *b\n", "merge keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]config.File{{Name: "x.yaml", Data: []byte(tt.yaml)}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
			if n := strings.Count(err.Error(), "\n"); n > 20 {
				t.Errorf("%d error lines; a hostile file should not flood the output", n)
			}
		})
	}
}
