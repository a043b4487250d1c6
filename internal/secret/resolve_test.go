package secret

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func testKey(t *testing.T, b byte) *MasterKey {
	t.Helper()
	k, err := ParseMasterKey(strings.Repeat(string(rune('A'+b%26)), 43) + "=")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// memStore is a LocalStore in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string]*Sealed
}

func (s *memStore) LocalSecret(_ context.Context, name string) (*Sealed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[name]; ok {
		c := *v
		return &c, nil
	}
	return nil, ErrNotFound
}

func TestParseMasterKey(t *testing.T) {
	for _, bad := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := ParseMasterKey(bad); err == nil {
			t.Errorf("ParseMasterKey(%q) succeeded, want an error", bad)
		}
	}
	k := testKey(t, 0)
	if len(k.ID()) != 16 || strings.Contains(k.String(), "AAAA") {
		t.Errorf("key id %q, String %q", k.ID(), k.String())
	}
}

func TestLocalSealOpen(t *testing.T) {
	k1, k2 := testKey(t, 1), testKey(t, 2)
	s, err := k1.Seal("db/password", 3, NewValue("p4ssw0rd"))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := k1.Seal("db/password", 3, NewValue("p4ssw0rd"))
	if string(s.Nonce) == string(s2.Nonce) || string(s.Ciphertext) == string(s2.Ciphertext) {
		t.Error("two seals share a nonce or a ciphertext")
	}
	if v, err := k1.Open(s); err != nil || v.Reveal() != "p4ssw0rd" {
		t.Fatalf("Open = %v, %v", v.Reveal(), err)
	}
	// Wrong master key: a clear error, nothing decrypted.
	if _, err := k2.Open(s); !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "local://db/password") {
		t.Errorf("Open under another key: %v, want ErrWrongKey naming the reference", err)
	}
	// A relabelled key id does not help either.
	forged := *s
	forged.KeyID = k2.ID()
	if _, err := k2.Open(&forged); !errors.Is(err, ErrTampered) {
		t.Errorf("Open with a forged key id: %v, want ErrTampered", err)
	}
	// Tampered ciphertext, moved row, other version: refused.
	for name, mut := range map[string]func(*Sealed){
		"flipped bit":   func(x *Sealed) { x.Ciphertext = append([]byte{}, x.Ciphertext...); x.Ciphertext[0] ^= 1 },
		"other name":    func(x *Sealed) { x.Name = "other" },
		"other version": func(x *Sealed) { x.Version = 2 },
		"short nonce":   func(x *Sealed) { x.Nonce = x.Nonce[:4] },
	} {
		c := *s
		mut(&c)
		if _, err := k1.Open(&c); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: Open = %v, want ErrTampered", name, err)
		}
	}
	// Rekey keeps name and version.
	re, err := k1.Reseal(s, k2)
	if err != nil || re.KeyID != k2.ID() || re.Version != 3 {
		t.Fatalf("Reseal = %+v, %v", re, err)
	}
	if v, err := k2.Open(re); err != nil || v.Reveal() != "p4ssw0rd" {
		t.Errorf("Open after rekey = %v", err)
	}
	now := time.Now()
	s.RevokedAt = &now
	if _, err := k1.Open(s); !errors.Is(err, ErrRevoked) {
		t.Errorf("Open of a revoked secret = %v, want ErrRevoked", err)
	}
}

// countingProvider counts resolutions and serves a settable value.
type countingProvider struct {
	mu    sync.Mutex
	n     int
	value string
	err   error
}

func (p *countingProvider) Resolve(context.Context, Ref) (Value, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	return NewValue(p.value), p.err
}

func TestResolverTTLAndScope(t *testing.T) {
	now := time.Unix(1000, 0)
	prov := &countingProvider{value: "first-value"}
	red := NewRedactor()
	r := NewResolver(ResolverOptions{Providers: map[string]Provider{"vault": prov}, Redactor: red, Now: func() time.Time { return now }})
	gh := r.Scope("github", map[string]string{"token": "vault://kv/github#token"}, time.Minute)
	ctx := context.Background()

	get := func(s *Scope, name string) string {
		t.Helper()
		v, err := s.Resolve(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return v.Reveal()
	}
	if get(gh, "token") != "first-value" || get(gh, "token") != "first-value" || prov.n != 1 {
		t.Fatalf("resolved %d times within the TTL, want 1", prov.n)
	}
	if red.Redact("x first-value") != "x [REDACTED:token]" {
		t.Error("a resolved value is not registered with the redactor")
	}
	prov.value = "second-value" // rotated in the backend
	now = now.Add(59 * time.Second)
	if got := get(gh, "token"); got != "first-value" {
		t.Errorf("within the TTL got %q", got)
	}
	now = now.Add(2 * time.Second) // TTL expired
	if got := get(gh, "token"); got != "second-value" || prov.n != 2 {
		t.Errorf("after the TTL got %q (%d resolutions), want the new value", got, prov.n)
	}
	// ttl 0: every call resolves.
	nocache := r.Scope("nocache", map[string]string{"token": "vault://kv/github#token"}, 0)
	get(nocache, "token")
	get(nocache, "token")
	if prov.n != 4 {
		t.Errorf("ttl 0: %d resolutions, want 4", prov.n)
	}
	// Scope: a connector cannot name another connector's credential.
	other := r.Scope("slack", map[string]string{"hook": "env://SLACK_HOOK"}, time.Minute)
	if _, err := other.Resolve(ctx, "token"); err == nil {
		t.Error("a connector resolved a credential it does not reference")
	}
	// Failure: fails closed, names the reference, never cached.
	prov.err = &Error{Ref: "vault://kv/github#token", Err: ErrDenied}
	if _, err := nocache.Resolve(ctx, "token"); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "vault://kv/github#token") {
		t.Errorf("err = %v", err)
	}
}

func TestLocalProviderRotationAndRevocation(t *testing.T) {
	k := testKey(t, 5)
	st := &memStore{m: map[string]*Sealed{}}
	seal := func(v string, version int64) {
		s, err := k.Seal("api", version, NewValue(v))
		if err != nil {
			t.Fatal(err)
		}
		st.mu.Lock()
		st.m["api"] = s
		st.mu.Unlock()
	}
	seal("value-one", 1)
	r := NewResolver(ResolverOptions{Providers: map[string]Provider{"local": &Local{Store: st, Key: k}}})
	sc := r.Scope("c", map[string]string{"k": "local://api", "missing": "local://nope"}, time.Hour)
	ctx := context.Background()
	if v, err := sc.Resolve(ctx, "k"); err != nil || v.Reveal() != "value-one" {
		t.Fatalf("got %v, %v", v.Reveal(), err)
	}
	seal("value-two", 2) // rotate: the next call sees it despite the 1h TTL
	if v, _ := sc.Resolve(ctx, "k"); v.Reveal() != "value-two" {
		t.Errorf("after rotation got %q", v.Reveal())
	}
	now := time.Now()
	st.m["api"].RevokedAt = &now // revoke: the next call fails
	if _, err := sc.Resolve(ctx, "k"); !errors.Is(err, ErrRevoked) {
		t.Errorf("after revocation err = %v, want ErrRevoked", err)
	}
	if _, err := sc.Resolve(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	nokey := NewResolver(ResolverOptions{Providers: map[string]Provider{"local": &Local{Store: st}}})
	if _, err := nokey.Scope("c", map[string]string{"k": "local://api"}, 0).Resolve(ctx, "k"); !errors.Is(err, ErrNoMasterKey) {
		t.Errorf("no master key: %v", err)
	}
}
