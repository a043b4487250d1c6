package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/app/apptest"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/cli"
	"github.com/warden-dev/warden/internal/secret"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

const secretsConfig = `
kind: agent
name: bot
owner: test@example.com
permissions:
  echo: {call: on}
  vaulted: {call: on}
  broken: {call: on}
---
kind: connector
name: echo
type: http
base_url: %[1]s
headers: {Authorization: "Bearer {credentials.token}"}
credentials: {token: "env://E2E_TOKEN"}
actions:
  call:
    type: read
    method: POST
    path: /echo
    query: {key: "{credentials.token}"}
    body: {secret: "{credentials.token}", note: "{args.note}"}
---
kind: connector
name: vaulted
type: http
base_url: %[1]s
credentials_ttl: 1h          # local:// is read on every call whatever the TTL
headers: {Authorization: "Bearer {credentials.key}"}
credentials: {key: "local://e2e/api"}
actions:
  call: {type: read, method: POST, path: /echo}
---
kind: connector
name: broken
type: http
base_url: %[1]s
credentials: {token: "env://E2E_UNSET_VARIABLE"}
actions:
  call: {type: read, method: GET, path: "/echo", headers: {X-Key: "{credentials.token}"}}
`

// echoUpstream answers with everything it received, and with the bearer
// credential it got in base64, hex and URL-encoded forms, as a careless
// or hostile API might.
type echoUpstream struct {
	mu   sync.Mutex
	seen []string // Authorization headers received
}

func (u *echoUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	auth := r.Header.Get("Authorization")
	u.mu.Lock()
	u.seen = append(u.seen, auth)
	u.mu.Unlock()
	cred := strings.TrimPrefix(auth, "Bearer ")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"headers":    r.Header,
		"query":      r.URL.RawQuery,
		"body":       string(body),
		"b64":        base64.StdEncoding.EncodeToString([]byte(cred)),
		"b64url":     base64.RawURLEncoding.EncodeToString([]byte(cred)),
		"hex":        hex.EncodeToString([]byte(cred)),
		"basic":      "Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+cred)),
		"github_pat": "ghp_" + strings.Repeat("Z", 36),
	})
}

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSecretsNeverReachAgentAuditOrLogs(t *testing.T) {
	const envSecret = "e2e-Env+Secret/Value=42&x"
	const localV1, localV2 = "local-secret-version-one", "local-secret-version-two"
	t.Setenv("E2E_TOKEN", envSecret)
	up := &echoUpstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()

	cfgDir, db := apptest.Config(t, fmt.Sprintf(secretsConfig, srv.URL))
	keyFile := filepath.Join(filepath.Dir(db), "master.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := secret.LoadMasterKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	st, err := app.OpenStore(ctx, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateSecret(ctx, "e2e/api", func(v int64) (*secret.Sealed, error) {
		return key.Seal("e2e/api", v, secret.NewValue(localV1))
	}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := st.CreateToken(ctx, call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "bot"})
	if err != nil {
		t.Fatal(err)
	}

	logs := &syncBuffer{}
	wd := apptest.Start(t, app.Options{ConfigDir: cfgDir, DB: db, MasterKeyFile: keyFile,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	base := wd.URL

	post := func(connector string, args map[string]any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"connector": connector, "action": "call", "args": args})
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/calls", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}

	var responses []string
	// The env:// credential in a header, the query and the body; the
	// agent also passes a token shape in its args.
	code, body := post("echo", map[string]any{"note": "ghp_" + strings.Repeat("A", 36)})
	if code != 200 || !strings.Contains(body, `"status":"succeeded"`) {
		t.Fatalf("echo call: %d %s", code, body)
	}
	responses = append(responses, body)
	// local://: version 1, then rotated, then revoked.
	code, body = post("vaulted", nil)
	if code != 200 {
		t.Fatalf("vaulted call: %d %s", code, body)
	}
	responses = append(responses, body)
	if _, err := st.RotateSecret(ctx, "e2e/api", func(v int64) (*secret.Sealed, error) {
		return key.Seal("e2e/api", v, secret.NewValue(localV2))
	}); err != nil {
		t.Fatal(err)
	}
	code, body = post("vaulted", nil)
	responses = append(responses, body)
	up.mu.Lock()
	last := up.seen[len(up.seen)-1]
	up.mu.Unlock()
	if code != 200 || last != "Bearer "+localV2 {
		t.Errorf("after rotation the upstream got %q (%d), want the new version on the next call", last, code)
	}
	if err := st.RevokeSecret(ctx, "e2e/api"); err != nil {
		t.Fatal(err)
	}
	n := len(up.seen)
	code, body = post("vaulted", nil)
	responses = append(responses, body)
	// The agent is told which credential, not where it lives; the audit
	// record has the reference and the cause (checked below).
	if !strings.Contains(body, `"status":"failed"`) || !strings.Contains(body, `credential \"key\" could not be resolved`) || strings.Contains(body, "local://") {
		t.Errorf("after revocation: %d %s, want a failed call naming the credential, not the reference", code, body)
	}
	if len(up.seen) != n {
		t.Error("a call with a revoked credential reached the upstream")
	}
	// An unresolvable credential fails the call, closed, and says why.
	code, body = post("broken", nil)
	responses = append(responses, body)
	if !strings.Contains(body, `"status":"failed"`) || !strings.Contains(body, `credential \"token\"`) || strings.Contains(body, "env://") {
		t.Errorf("unresolvable credential: %d %s", code, body)
	}

	if err := wd.Stop(); err != nil {
		t.Fatalf("app.Run: %v", err)
	}
	recs, err := st.AuditRecords(ctx, sqlite.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	auditJSON, _ := json.Marshal(recs)
	var used, failed []string
	for _, r := range recs {
		used = append(used, r.CredentialsUsed...)
		if r.Error != "" {
			failed = append(failed, r.Error)
		}
	}
	if !strings.Contains(strings.Join(used, " "), "env://E2E_TOKEN") || !strings.Contains(strings.Join(used, " "), "local://e2e/api") {
		t.Errorf("credentials_used = %v, want the references", used)
	}
	if all := strings.Join(failed, "\n"); !strings.Contains(all, "env://E2E_UNSET_VARIABLE") || !strings.Contains(all, "local://e2e/api") || !strings.Contains(all, "revoked") {
		t.Errorf("the failed resolutions are not audited with their references and causes: errors %q", failed)
	}
	if !strings.Contains(string(auditJSON), "[REDACTED:github-token]") {
		t.Error("the token shape in the args is not redacted in the audit records")
	}

	// What an auditor gets: warden audit export.
	var export, exportErr bytes.Buffer
	if code := cli.Run(ctx, []string{"audit", "export", "--format", "jsonl", "--db", db}, strings.NewReader(""), &export, &exportErr); code != 0 || export.Len() == 0 {
		t.Fatalf("audit export: exit %d, %s", code, exportErr.String())
	}
	places := map[string]string{
		"agent responses": strings.Join(responses, "\n"),
		"audit records":   string(auditJSON),
		"audit export":    export.String(),
		"server logs":     logs.String(),
	}
	for _, v := range []string{envSecret, localV1, localV2} {
		for _, form := range secret.Forms(v) {
			for where, text := range places {
				if strings.Contains(text, form) {
					t.Errorf("%s contain the secret %q in the form %q", where, v[:6]+"…", form)
				}
			}
		}
	}
	for where, text := range places {
		if strings.Contains(text, "ghp_"+strings.Repeat("Z", 36)) || strings.Contains(text, "ghp_"+strings.Repeat("A", 36)) {
			t.Errorf("%s contain a GitHub token", where)
		}
	}
	if !strings.Contains(responses[0], "[REDACTED:token]") {
		t.Errorf("the echoed secret is not marked redacted in the response: %s", responses[0])
	}
}
