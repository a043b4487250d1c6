package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/secret"
)

func runIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestSecretsCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "w.db")
	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k2file := filepath.Join(dir, "k2")
	os.WriteFile(k2file, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))), 0o600)
	t.Setenv("WARDEN_MASTER_KEY", k1)
	t.Setenv("WARDEN_MASTER_KEY_FILE", "")

	if code, _, errOut := runIn(t, "", "secrets", "set", "api", "the-value", "--db", db); code != exitBadArgs || !strings.Contains(errOut, "stdin") {
		t.Errorf("a value on argv: exit %d, %q; want it refused", code, errOut)
	}
	if code, out, errOut := runIn(t, "value-one\n", "secrets", "set", "api", "--db", db); code != 0 || !strings.Contains(out, "version 1") {
		t.Fatalf("set: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runIn(t, "again", "secrets", "set", "api", "--db", db); code != exitFailed || !strings.Contains(errOut, "rotate") {
		t.Errorf("set of an existing secret: %d %q", code, errOut)
	}
	if code, out, _ := runIn(t, "value-two", "secrets", "rotate", "api", "--db", db); code != 0 || !strings.Contains(out, "version 2") {
		t.Errorf("rotate: %d %q", code, out)
	}
	code, out, _ := runIn(t, "", "secrets", "list", "--db", db)
	if code != 0 || !strings.Contains(out, "api") || strings.Contains(out, "value-") {
		t.Errorf("list: %d %q", code, out)
	}

	read := func(keyB64 string) (string, error) {
		k, err := secret.ParseMasterKey(keyB64)
		if err != nil {
			t.Fatal(err)
		}
		st, err := app.OpenStore(context.Background(), db, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		v, err := (&secret.Local{Store: st, Key: k}).Resolve(context.Background(), secret.Ref{Scheme: "local", Path: "api"})
		return v.Reveal(), err
	}
	if v, err := read(k1); err != nil || v != "value-two" {
		t.Fatalf("read after rotate: %q %v", v, err)
	}
	// rekey: everything moves to the new key; the old one no longer opens it.
	if code, out, errOut := runIn(t, "", "secrets", "rekey", "--new-master-key-file", k2file, "--db", db); code != 0 || !strings.Contains(out, "re-encrypted 1") {
		t.Fatalf("rekey: %d %q %q", code, out, errOut)
	}
	k2, _ := os.ReadFile(k2file)
	if v, err := read(string(k2)); err != nil || v != "value-two" {
		t.Errorf("read under the new key: %q %v", v, err)
	}
	if _, err := read(k1); err == nil || !strings.Contains(err.Error(), "different master key") {
		t.Errorf("read under the old key: %v, want a clear wrong-key error", err)
	}
	if code, _, errOut := runIn(t, "v3", "secrets", "rotate", "api", "--db", db); code != exitFailed || !strings.Contains(errOut, "master key id") {
		t.Errorf("rotate under the old key: %d %q, want it refused", code, errOut)
	}
	if code, out, _ := runIn(t, "", "secrets", "revoke", "api", "--db", db); code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("revoke: %d %q", code, out)
	}
	if _, err := read(string(k2)); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("read after revoke: %v", err)
	}
	if code, _, _ := runIn(t, "", "secrets", "revoke", "api", "--db", db); code != exitFailed {
		t.Errorf("second revoke: exit %d, want 1", code)
	}
}
