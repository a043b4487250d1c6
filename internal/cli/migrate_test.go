package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestMigrate(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	run := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := Run(context.Background(), append([]string{"migrate"}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"dry run on a new file", []string{"--dry-run", "--db", db}, 0, "pending 0001_audit.sql\n", ""},
		{"apply", []string{"--db", db}, 0, "applied 0001_audit.sql\n", ""},
		{"up to date", []string{"--db", db}, 0, db + ": schema up to date\n", ""},
		{"dry run when up to date", []string{"--dry-run", "--db", db}, 0, "schema up to date", ""},
		{"argument", []string{"--db", db, "extra"}, exitBadArgs, "", "migrate takes no arguments"},
		{"empty db", []string{"--db", ""}, exitBadArgs, "", "--db is empty"},
		{"unreachable postgres, password not shown", []string{"--db", "postgres://warden:pw-s3cret@127.0.0.1:1/warden?connect_timeout=2"}, exitFailed, "", "postgres://warden:xxxxx@127.0.0.1:1/warden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Fatalf("code %d, stdout %q, stderr %q; want %d, %q, %q", code, out, errOut, tc.code, tc.out, tc.err)
			}
			if strings.Contains(out+errOut, "pw-s3cret") {
				t.Fatalf("the password is shown: %s%s", out, errOut)
			}
		})
	}
}
