package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

func TestKillRevive(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	ctx := context.Background()
	killed := func(tenant, agent string) bool {
		t.Helper()
		st, err := app.OpenStore(ctx, db, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		k, err := st.Killed(ctx, tenant, agent)
		if err != nil {
			t.Fatal(err)
		}
		return k != nil
	}
	steps := []struct {
		args     []string
		code     int
		out      string
		tenant   string
		agent    string
		isKilled bool
	}{
		{[]string{"kill", "bot", "--reason", "looping", "--by", "alice"}, 0, "killed default/bot by alice: looping", "default", "bot", true},
		{[]string{"kill", "bot"}, 0, "default/bot was already killed", "default", "other", false},
		{[]string{"revive", "bot", "--by", "alice"}, 0, "revived default/bot by alice", "default", "bot", false},
		{[]string{"revive", "bot"}, 0, "default/bot was not killed", "default", "bot", false},
		{[]string{"kill", "--tenant", "acme", "--by", "bob"}, 0, "killed tenant acme by bob", "acme", "anyone", true},
		{[]string{"revive", "--tenant", "acme"}, 0, "revived tenant acme", "acme", "anyone", false},
		{[]string{"kill", "--all", "--by", "carol"}, 0, "killed everything by carol", "x", "y", true},
		{[]string{"revive", "--all"}, 0, "revived everything", "x", "y", false},
		{[]string{"kill"}, 2, "", "", "", false},
		{[]string{"kill", "--all", "bot"}, 2, "", "", "", false},
	}
	for _, s := range steps {
		code, out, errOut := run(t, append(s.args, "--db", db)...)
		if code != s.code || !strings.Contains(out, s.out) {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q; want %d and %q", s.args, code, out, errOut, s.code, s.out)
		}
		if s.tenant != "" && killed(s.tenant, s.agent) != s.isKilled {
			t.Fatalf("after %v: killed(%s/%s) = %v, want %v", s.args, s.tenant, s.agent, !s.isKilled, s.isKilled)
		}
	}
	st, err := app.OpenStore(ctx, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.AuditRecords(ctx, sqlite.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, r.Kind)
	}
	if got := strings.Join(kinds, ","); got != "kill,revive,kill,revive,kill,revive" {
		t.Errorf("audit kinds = %s; every kill and revive must be audited", got)
	}
}
