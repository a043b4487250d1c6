package config_test

import (
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/config"
)

func TestExecConnector(t *testing.T) {
	cfg, err := parse(t, `kind: connector
name: tools
type: exec
credentials: {token: env://TOOLS_TOKEN}
egress: [api.github.com, "*.example.org", "db.example.net:5432"]
sandbox:
  binds: [/usr, /lib, /etc/ssl/]
  workdir: {seed: /srv/repo, keep: true}
  limits: {cpu: 10s, memory: 256MiB, processes: 64, file_size: 16MiB, open_files: 256, timeout: 30s, output: 1MiB, address_space: 2GiB, tmp: 4096}
actions:
  grep:
    type: read
    command: ["grep", "-rn", "--", "{args.pattern}", "."]
    env: {TOKEN: "{credentials.token}"}
    limits: {timeout: 5s}
    input_schema: {type: object, properties: {pattern: {type: string}}, required: [pattern]}
  script: {type: execute, shell: true, command: ["echo {args.msg}"]}
`)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connectors[0]
	s := c.Sandbox
	if s == nil {
		t.Fatal("no sandbox on an exec connector")
	}
	want := config.SandboxLimits{CPU: config.Duration(10 * time.Second), Memory: 256 << 20, Processes: 64, FileSize: 16 << 20,
		OpenFiles: 256, Timeout: config.Duration(30 * time.Second), Output: 1 << 20, AddressSpace: 2 << 30, Tmp: 4096}
	if s.Limits != want {
		t.Errorf("limits = %+v, want %+v", s.Limits, want)
	}
	if len(s.Egress) != 3 || len(s.Binds) != 3 || s.Binds[2] != "/etc/ssl" || s.Workdir.Seed != "/srv/repo" || !s.Workdir.Keep {
		t.Errorf("sandbox = %+v", s)
	}
	g := c.Actions["grep"].Exec
	if g == nil || len(g.Command) != 5 || g.Env["TOKEN"] != "{credentials.token}" || g.Shell {
		t.Fatalf("grep = %+v", g)
	}
	merged := g.Limits.Merge(s.Limits)
	if merged.Timeout != config.Duration(5*time.Second) || merged.CPU != config.Duration(10*time.Second) {
		t.Errorf("merged limits = %+v", merged)
	}
	if sc := c.Actions["script"].Exec; sc == nil || !sc.Shell {
		t.Errorf("script = %+v", sc)
	}

	// The defaults: an exec connector without a sandbox block still has
	// one, with zero (default) limits and no egress.
	cfg, err = parse(t, "kind: connector\nname: t\ntype: exec\nactions:\n  ls: {type: read, command: [ls]}\n")
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Connectors[0].Sandbox; s == nil || len(s.Egress) != 0 || s.Limits != (config.SandboxLimits{}) {
		t.Errorf("default sandbox = %+v", s)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]config.ByteSize{"4096": 4096, "1KiB": 1024, "2K": 2048, "256MiB": 256 << 20, "1GiB": 1 << 30, "3 MB": 3 << 20, "7B": 7} {
		if got, err := config.ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1.5GiB", "-1", "1TiB", "GiB", "99999999999999999999", "9999999999999GiB"} {
		if _, err := config.ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
}
