// Package vault resolves vault:// secret references against HashiCorp
// Vault or OpenBao key/value version 2 engines over their HTTP API:
// GET /v1/MOUNT/data/PATH, with a token (VAULT_TOKEN) or an AppRole login
// whose role_id and secret_id are themselves secret references. It is an
// adapter: the reference syntax, errors and value type are internal/secret's.
//
// A reference vault://MOUNT/PATH#KEY reads key KEY of the secret at PATH in
// the KV v2 engine mounted at MOUNT (the first path segment). The API form
// vault://MOUNT/data/PATH#KEY is accepted too and means the same; a secret
// whose own path starts with data/ is therefore written MOUNT/data/data/….
package vault

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/secret"
)

// Config says how to reach Vault. FromEnv reads it from the variables
// Vault's own CLI uses, plus warden's AppRole variables.
type Config struct {
	Addr      string // VAULT_ADDR, e.g. https://vault.example:8200
	Token     string // VAULT_TOKEN; when empty, AppRole is used
	Namespace string // VAULT_NAMESPACE (Enterprise / OpenBao namespaces): X-Vault-Namespace
	CACert    string // VAULT_CACERT: PEM file of the CA that signed Vault's certificate

	// AppRole: references (env://, file://, local://) to the role_id and
	// secret_id, never the values themselves, so they need not sit in the
	// process environment. WARDEN_VAULT_ROLE_ID, WARDEN_VAULT_SECRET_ID.
	RoleID, SecretID string
	AppRoleMount     string // WARDEN_VAULT_APPROLE_MOUNT; default "approle"

	Timeout time.Duration // per request; default 10s
	Client  *http.Client  // optional (tests); CACert is ignored when set
}

// FromEnv reads a Config from the environment. Addr is empty when
// VAULT_ADDR is not set: vault:// references then fail clearly.
func FromEnv() Config {
	return Config{
		Addr:         os.Getenv("VAULT_ADDR"),
		Token:        os.Getenv("VAULT_TOKEN"),
		Namespace:    os.Getenv("VAULT_NAMESPACE"),
		CACert:       os.Getenv("VAULT_CACERT"),
		RoleID:       os.Getenv("WARDEN_VAULT_ROLE_ID"),
		SecretID:     os.Getenv("WARDEN_VAULT_SECRET_ID"),
		AppRoleMount: os.Getenv("WARDEN_VAULT_APPROLE_MOUNT"),
	}
}

// RefResolver resolves the AppRole credentials' references.
type RefResolver interface {
	Resolve(ctx context.Context, r secret.Ref) (secret.Value, error)
}

// Provider resolves vault:// references. It is safe for concurrent use.
type Provider struct {
	cfg    Config
	base   *url.URL
	client *http.Client
	refs   RefResolver // for RoleID and SecretID
	now    func() time.Time

	mu       sync.Mutex // guards token and tokenExp
	token    secret.Value
	tokenExp time.Time // zero: does not expire (a static VAULT_TOKEN)
}

// New returns a provider for cfg. refs resolves the AppRole references
// (nil when only a token is used). A missing address is not an error here:
// every resolution then fails naming the reference, so a config without
// vault:// references runs without Vault.
func New(cfg Config, refs RefResolver) (*Provider, error) {
	p := &Provider{cfg: cfg, refs: refs, now: time.Now, client: cfg.Client}
	if cfg.Timeout <= 0 {
		p.cfg.Timeout = 10 * time.Second
	}
	if cfg.AppRoleMount == "" {
		p.cfg.AppRoleMount = "approle"
	}
	if cfg.Addr != "" {
		u, err := url.Parse(strings.TrimRight(cfg.Addr, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("VAULT_ADDR %q must be an http or https URL", cfg.Addr)
		}
		p.base = u
	}
	if p.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.CACert != "" {
			pem, err := os.ReadFile(cfg.CACert)
			if err != nil {
				return nil, fmt.Errorf("VAULT_CACERT: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("VAULT_CACERT %s: no PEM certificate in it", cfg.CACert)
			}
			t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		p.client = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a token is never replayed to another host
		}}
	}
	if cfg.Token != "" {
		p.token = secret.NewValue(cfg.Token)
	}
	return p, nil
}

// Split returns the mount and the secret path of a vault:// reference's
// path: the first segment is the mount; a following "data" segment (the
// API path form) is dropped.
func Split(path string) (mount, sub string, err error) {
	mount, sub, ok := strings.Cut(strings.Trim(path, "/"), "/")
	if !ok || mount == "" || sub == "" {
		return "", "", errors.New("needs MOUNT/PATH")
	}
	if rest, ok := strings.CutPrefix(sub, "data/"); ok && rest != "" {
		sub = rest
	}
	return mount, sub, nil
}

// kvResponse is the KV v2 read response (the parts warden uses).
type kvResponse struct {
	Data struct {
		Data     map[string]any `json:"data"`
		Metadata struct {
			Version      int64  `json:"version"`
			DeletionTime string `json:"deletion_time"`
			Destroyed    bool   `json:"destroyed"`
		} `json:"metadata"`
	} `json:"data"`
}

// Resolve reads the reference's key from Vault.
func (p *Provider) Resolve(ctx context.Context, r secret.Ref) (secret.Value, error) {
	ref := r.String()
	fail := func(err error, reason string, a ...any) (secret.Value, error) {
		return secret.Value{}, &secret.Error{Ref: ref, Err: err, Reason: fmt.Sprintf(reason, a...)}
	}
	if p.base == nil {
		return fail(secret.ErrUnavailable, "VAULT_ADDR is not set")
	}
	mount, sub, err := Split(r.Path)
	if err != nil {
		return fail(secret.ErrNotFound, "%v", err)
	}
	u := *p.base
	u.Path = p.base.Path + "/v1/" + escapePath(mount) + "/data/" + escapePath(sub)
	for attempt := 0; ; attempt++ {
		tok, err := p.currentToken(ctx, ref)
		if err != nil {
			return secret.Value{}, err
		}
		status, body, err := p.do(ctx, http.MethodGet, u.String(), tok, nil)
		if err != nil {
			return fail(secret.ErrUnavailable, "vault at %s did not answer", p.base.Host)
		}
		switch {
		case status == http.StatusOK:
		case status == http.StatusForbidden && attempt == 0 && p.usesAppRole():
			p.dropToken() // the login token may have expired early: log in again once
			continue
		default:
			return secret.Value{}, statusError(ref, status)
		}
		var kv kvResponse
		if err := json.Unmarshal(body, &kv); err != nil {
			return fail(secret.ErrUnavailable, "vault answered something that is not a KV v2 response (is %s a KV version 2 mount?)", mount)
		}
		md := kv.Data.Metadata
		if md.Destroyed || md.DeletionTime != "" || kv.Data.Data == nil {
			return fail(secret.ErrNotFound, "the secret's current version is deleted")
		}
		v, ok := kv.Data.Data[r.Key]
		if !ok {
			return fail(secret.ErrNotFound, "the secret has no key %q", r.Key)
		}
		s, ok := v.(string)
		if !ok {
			return fail(secret.ErrNotFound, "key %q is not a string", r.Key)
		}
		return secret.NewValue(s), nil
	}
}

func statusError(ref string, status int) error {
	e := &secret.Error{Ref: ref}
	switch status {
	case http.StatusServiceUnavailable:
		e.Err, e.Reason = secret.ErrUnavailable, "vault is sealed or in standby (503)"
	case http.StatusForbidden:
		e.Err, e.Reason = secret.ErrDenied, "vault refused the token (403): missing policy, or the token expired"
	case http.StatusNotFound:
		e.Err, e.Reason = secret.ErrNotFound, "no such secret, or no KV v2 engine at that mount (404)"
	case http.StatusTooManyRequests:
		e.Err, e.Reason = secret.ErrUnavailable, "vault is rate limiting (429)"
	default:
		e.Err, e.Reason = secret.ErrUnavailable, fmt.Sprintf("vault answered %d", status)
	}
	return e
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

func (p *Provider) usesAppRole() bool { return p.cfg.Token == "" && p.cfg.RoleID != "" }

func (p *Provider) dropToken() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.token, p.tokenExp = secret.Value{}, time.Time{}
}

// currentToken returns the static token, or an AppRole login token that is
// renewed by logging in again shortly before its lease ends.
func (p *Provider) currentToken(ctx context.Context, ref string) (secret.Value, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.token.Empty() && (p.tokenExp.IsZero() || p.now().Before(p.tokenExp)) {
		return p.token, nil
	}
	if !p.usesAppRole() {
		return secret.Value{}, &secret.Error{Ref: ref, Err: secret.ErrDenied, Reason: "no vault credentials: set VAULT_TOKEN, or WARDEN_VAULT_ROLE_ID and WARDEN_VAULT_SECRET_ID"}
	}
	tok, ttl, err := p.login(ctx, ref)
	if err != nil {
		return secret.Value{}, err
	}
	p.token = tok
	p.tokenExp = time.Time{}
	if ttl > 0 {
		p.tokenExp = p.now().Add(ttl * 9 / 10)
	}
	return tok, nil
}

func (p *Provider) login(ctx context.Context, ref string) (secret.Value, time.Duration, error) {
	fail := func(err error, reason string) (secret.Value, time.Duration, error) {
		return secret.Value{}, 0, &secret.Error{Ref: ref, Err: err, Reason: "approle login: " + reason}
	}
	if p.refs == nil {
		return fail(secret.ErrUnavailable, "no resolver for the role_id and secret_id references")
	}
	get := func(s, what string) (secret.Value, error) {
		r, err := secret.ParseRef(s)
		if err != nil {
			return secret.Value{}, fmt.Errorf("%s must be a secret reference (env://, file://, local://): %w", what, err)
		}
		if r.Scheme == "vault" {
			return secret.Value{}, fmt.Errorf("%s cannot itself be a vault:// reference", what)
		}
		return p.refs.Resolve(ctx, r)
	}
	roleID, err := get(p.cfg.RoleID, "WARDEN_VAULT_ROLE_ID")
	if err != nil {
		return fail(secret.ErrDenied, err.Error())
	}
	secretID, err := get(p.cfg.SecretID, "WARDEN_VAULT_SECRET_ID")
	if err != nil {
		return fail(secret.ErrDenied, err.Error())
	}
	body, _ := json.Marshal(map[string]string{"role_id": roleID.Reveal(), "secret_id": secretID.Reveal()})
	u := *p.base
	u.Path = p.base.Path + "/v1/auth/" + escapePath(p.cfg.AppRoleMount) + "/login"
	status, resp, err := p.do(ctx, http.MethodPost, u.String(), secret.Value{}, body)
	if err != nil {
		return fail(secret.ErrUnavailable, "vault did not answer")
	}
	if status != http.StatusOK {
		e := statusError(ref, status).(*secret.Error)
		e.Reason = "approle login: " + e.Reason
		if status == http.StatusBadRequest {
			e.Err, e.Reason = secret.ErrDenied, "approle login refused (400): invalid role_id or secret_id"
		}
		return secret.Value{}, 0, e
	}
	var out struct {
		Auth struct {
			ClientToken   string `json:"client_token"`
			LeaseDuration int64  `json:"lease_duration"`
		} `json:"auth"`
	}
	if err := json.Unmarshal(resp, &out); err != nil || out.Auth.ClientToken == "" {
		return fail(secret.ErrUnavailable, "vault's answer has no client token")
	}
	return secret.NewValue(out.Auth.ClientToken), time.Duration(out.Auth.LeaseDuration) * time.Second, nil
}

// do sends one request. Errors never include the response body, which
// could echo what was sent.
func (p *Provider) do(ctx context.Context, method, u string, tok secret.Value, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if !tok.Empty() {
		req.Header.Set("X-Vault-Token", tok.Reveal())
	}
	if p.cfg.Namespace != "" {
		req.Header.Set("X-Vault-Namespace", p.cfg.Namespace)
	}
	req.Header.Set("X-Vault-Request", "true")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

var _ secret.Provider = (*Provider)(nil)
