package vault

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/warden-dev/warden/internal/secret"
)

// standin is a stand-in for Vault / OpenBao speaking the documented KV v2
// and AppRole wire format (real Vault is not reachable from the tests).
type standin struct {
	t         *testing.T
	token     string
	namespace string
	sealed    bool
	logins    atomic.Int32
	srv       *httptest.Server
}

func newStandin(t *testing.T) *standin {
	s := &standin{t: t, token: "hvs.root-token-123"}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standin) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if s.sealed {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"errors":["Vault is sealed"]}`))
		return
	}
	if r.URL.Path == "/v1/auth/approle/login" && r.Method == http.MethodPost {
		var body struct{ RoleID, SecretID string }
		var raw map[string]string
		json.NewDecoder(r.Body).Decode(&raw)
		body.RoleID, body.SecretID = raw["role_id"], raw["secret_id"]
		if body.RoleID != "role-abc" || body.SecretID != "secret-xyz" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"errors":["invalid role or secret ID"]}`))
			return
		}
		s.logins.Add(1)
		s.token = "hvs.approle-token"
		w.Write([]byte(`{"auth":{"client_token":"hvs.approle-token","lease_duration":3600,"renewable":true}}`))
		return
	}
	if r.Header.Get("X-Vault-Token") != s.token || r.Header.Get("X-Vault-Namespace") != s.namespace {
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"errors":["permission denied"]}`))
		return
	}
	switch r.URL.Path {
	case "/v1/secret/data/github":
		w.Write([]byte(`{"request_id":"x","lease_id":"","renewable":false,"lease_duration":0,
			"data":{"data":{"token":"ghp_fromvault","n":3},
			"metadata":{"created_time":"2026-01-01T00:00:00Z","deletion_time":"","destroyed":false,"version":2}}}`))
	case "/v1/secret/data/gone":
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"data":{"data":null,"metadata":{"deletion_time":"2026-01-01T00:00:00Z","destroyed":false,"version":1}}}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errors":[]}`))
	}
}

func ref(t *testing.T, s string) secret.Ref {
	t.Helper()
	r, err := secret.ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVaultKV2_StandinToken(t *testing.T) {
	s := newStandin(t)
	s.namespace = "team-a"
	p, err := New(Config{Addr: s.srv.URL, Token: s.token, Namespace: "team-a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, r := range []string{"vault://secret/github#token", "vault://secret/data/github#token"} {
		v, err := p.Resolve(ctx, ref(t, r))
		if err != nil || v.Reveal() != "ghp_fromvault" {
			t.Errorf("%s: got %q, %v", r, v.Reveal(), err)
		}
	}
	tests := []struct {
		ref  string
		want error
		text string
	}{
		{"vault://secret/github#nokey", secret.ErrNotFound, `no key "nokey"`},
		{"vault://secret/github#n", secret.ErrNotFound, "not a string"},
		{"vault://secret/missing#token", secret.ErrNotFound, "404"},
		{"vault://secret/gone#token", secret.ErrNotFound, "404"},
	}
	for _, tt := range tests {
		_, err := p.Resolve(ctx, ref(t, tt.ref))
		checkErr(t, err, tt.ref, tt.want, tt.text)
	}
}

func TestVaultKV2_StandinErrors(t *testing.T) {
	s := newStandin(t)
	ctx := context.Background()
	bad, _ := New(Config{Addr: s.srv.URL, Token: "hvs.wrong"}, nil)
	_, err := bad.Resolve(ctx, ref(t, "vault://secret/github#token"))
	checkErr(t, err, "vault://secret/github#token", secret.ErrDenied, "403")

	good, _ := New(Config{Addr: s.srv.URL, Token: s.token}, nil)
	s.sealed = true
	_, err = good.Resolve(ctx, ref(t, "vault://secret/github#token"))
	checkErr(t, err, "vault://secret/github#token", secret.ErrUnavailable, "sealed")

	noaddr, _ := New(Config{}, nil)
	_, err = noaddr.Resolve(ctx, ref(t, "vault://secret/github#token"))
	checkErr(t, err, "vault://secret/github#token", secret.ErrUnavailable, "VAULT_ADDR")

	down, _ := New(Config{Addr: "http://127.0.0.1:1", Token: "x"}, nil)
	_, err = down.Resolve(ctx, ref(t, "vault://secret/github#token"))
	checkErr(t, err, "vault://secret/github#token", secret.ErrUnavailable, "did not answer")
}

func TestVaultKV2_StandinAppRole(t *testing.T) {
	s := newStandin(t)
	t.Setenv("TEST_ROLE_ID", "role-abc")
	t.Setenv("TEST_SECRET_ID", "secret-xyz")
	refs := secret.Env{}
	p, err := New(Config{Addr: s.srv.URL, RoleID: "env://TEST_ROLE_ID", SecretID: "env://TEST_SECRET_ID"}, refs)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		v, err := p.Resolve(ctx, ref(t, "vault://secret/github#token"))
		if err != nil || v.Reveal() != "ghp_fromvault" {
			t.Fatalf("got %q, %v", v.Reveal(), err)
		}
	}
	if n := s.logins.Load(); n != 1 {
		t.Errorf("%d logins for 3 reads, want 1 (the token is reused within its lease)", n)
	}
	// The token was revoked server side: one new login, then success.
	s.token = "hvs.rotated"
	if _, err := p.Resolve(ctx, ref(t, "vault://secret/github#token")); err != nil {
		t.Errorf("after a token revocation: %v", err)
	}
	if n := s.logins.Load(); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}

	t.Setenv("TEST_SECRET_ID", "wrong-secret-id")
	p2, _ := New(Config{Addr: s.srv.URL, RoleID: "env://TEST_ROLE_ID", SecretID: "env://TEST_SECRET_ID"}, refs)
	_, err = p2.Resolve(ctx, ref(t, "vault://secret/github#token"))
	checkErr(t, err, "vault://secret/github#token", secret.ErrDenied, "approle")
	if strings.Contains(err.Error(), "wrong-secret-id") || strings.Contains(err.Error(), "role-abc") {
		t.Errorf("the error shows a credential: %v", err)
	}
}

func checkErr(t *testing.T, err error, ref string, want error, text string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", ref, err, want)
		return
	}
	if !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), text) {
		t.Errorf("%s: err = %q, want it to name the reference and say %q", ref, err, text)
	}
	for _, v := range []string{"ghp_fromvault", "hvs."} {
		if strings.Contains(err.Error(), v) {
			t.Errorf("%s: the error shows a value: %v", ref, err)
		}
	}
}

func TestSplit(t *testing.T) {
	for in, want := range map[string][2]string{
		"secret/github":           {"secret", "github"},
		"secret/data/github":      {"secret", "github"},
		"kv/team/app/db":          {"kv", "team/app/db"},
		"secret/data/data/nested": {"secret", "data/nested"},
	} {
		m, s, err := Split(in)
		if err != nil || m != want[0] || s != want[1] {
			t.Errorf("Split(%q) = %q, %q, %v; want %q", in, m, s, err, want)
		}
	}
	if _, _, err := Split("secret"); err == nil {
		t.Error("Split(secret) succeeded")
	}
}

func TestVaultKV2_StandinTLSCA(t *testing.T) {
	s := &standin{t: t, token: "hvs.tls"}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Addr: s.srv.URL, Token: s.token, CACert: ca}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.Resolve(context.Background(), ref(t, "vault://secret/github#token")); err != nil || v.Reveal() != "ghp_fromvault" {
		t.Errorf("with the CA: %v", err)
	}
	untrusted, _ := New(Config{Addr: s.srv.URL, Token: s.token}, nil)
	if _, err := untrusted.Resolve(context.Background(), ref(t, "vault://secret/github#token")); !errors.Is(err, secret.ErrUnavailable) {
		t.Errorf("without the CA: %v, want ErrUnavailable", err)
	}
}
