package secret

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Errors a provider reports, wrapped in *Error. None carries a value.
var (
	ErrUnsupported = errors.New("no provider for this reference scheme")
	ErrNotFound    = errors.New("not found")
	ErrDenied      = errors.New("permission denied")
	ErrUnavailable = errors.New("secret backend unavailable")
	ErrRevoked     = errors.New("revoked")
	ErrNoMasterKey = errors.New("no master key configured (WARDEN_MASTER_KEY or --master-key-file)")
	ErrWrongKey    = errors.New("encrypted under a different master key")
	ErrTampered    = errors.New("ciphertext failed authentication (tampered or corrupted); refused")
)

// Error is a failed resolution. Its text names the reference and the
// reason, never a value, so it is safe to return to the agent and to audit.
type Error struct {
	Ref    string // the reference as written
	Reason string // optional detail (a status code, a key name)
	Err    error  // one of the sentinels above, or a cause
}

func (e *Error) Error() string {
	s := "secret " + e.Ref + ": "
	if e.Err != nil {
		s += e.Err.Error()
	}
	if e.Reason != "" {
		if e.Err != nil {
			s += ": "
		}
		s += e.Reason
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Provider resolves the references of one scheme.
type Provider interface {
	Resolve(ctx context.Context, r Ref) (Value, error)
}

// Uncached is implemented by providers whose reads are cheap and whose
// values change under warden's own control (local://): they are read on
// every call, so that a rotation or revocation takes effect on the next one
// whatever the TTL.
type Uncached interface {
	Uncached() bool
}

// Env resolves env://NAME from the process environment.
type Env struct{}

func (Env) Resolve(_ context.Context, r Ref) (Value, error) {
	v, ok := os.LookupEnv(r.Path)
	if !ok || v == "" {
		return Value{}, &Error{Ref: r.String(), Err: ErrNotFound, Reason: "environment variable is not set"}
	}
	return NewValue(v), nil
}

// File resolves file://PATH: the file's content without trailing newlines.
type File struct{}

func (File) Resolve(_ context.Context, r Ref) (Value, error) {
	b, err := os.ReadFile(r.Path)
	if errors.Is(err, os.ErrNotExist) {
		return Value{}, &Error{Ref: r.String(), Err: ErrNotFound, Reason: "no such file"}
	}
	if err != nil {
		return Value{}, &Error{Ref: r.String(), Err: ErrUnavailable, Reason: "cannot read the file"}
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return Value{}, &Error{Ref: r.String(), Err: ErrNotFound, Reason: "the file is empty"}
	}
	return NewValue(v), nil
}

// DefaultTTL is how long a resolved value is reused when a connector sets
// no credentials_ttl.
const DefaultTTL = time.Minute

// Resolver resolves references through the providers of their schemes,
// caches values per connector for at most the connector's TTL, and
// registers every value it resolves with the redactor, so that nothing it
// handed out can leave warden in any outbound text.
type Resolver struct {
	providers map[string]Provider
	redactor  *Redactor
	now       func() time.Time

	mu    sync.Mutex
	cache map[cacheKey]cached
}

type cacheKey struct{ connector, ref string }

type cached struct {
	v       Value
	expires time.Time
}

// ResolverOptions configure a Resolver.
type ResolverOptions struct {
	Providers map[string]Provider // by scheme; env and file are added when absent
	Redactor  *Redactor           // required: every resolved value is registered with it
	Now       func() time.Time    // default time.Now
}

// NewResolver returns a resolver.
func NewResolver(o ResolverOptions) *Resolver {
	r := &Resolver{providers: map[string]Provider{}, redactor: o.Redactor, now: o.Now, cache: map[cacheKey]cached{}}
	for k, p := range o.Providers {
		r.providers[k] = p
	}
	if _, ok := r.providers["env"]; !ok {
		r.providers["env"] = Env{}
	}
	if _, ok := r.providers["file"]; !ok {
		r.providers["file"] = File{}
	}
	if r.redactor == nil {
		r.redactor = NewRedactor()
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// Redactor returns the redactor the resolver registers values with.
func (r *Resolver) Redactor() *Redactor { return r.redactor }

// Scope returns the resolver for one connector: it resolves only the
// credential names in creds (name → reference), which is how a secret is
// bound to the connectors whose config references it. ttl ≤ 0 disables
// caching.
func (r *Resolver) Scope(connector string, creds map[string]string, ttl time.Duration) *Scope {
	return &Scope{r: r, connector: connector, creds: creds, ttl: ttl}
}

// Scope resolves one connector's credentials by name.
type Scope struct {
	r         *Resolver
	connector string
	creds     map[string]string
	ttl       time.Duration
}

// Reference returns the reference behind a credential name.
func (s *Scope) Reference(name string) (string, bool) {
	ref, ok := s.creds[name]
	return ref, ok
}

// Resolve returns the value of the connector's credential name. A failure
// is an *Error naming the reference; it never contains a value.
func (s *Scope) Resolve(ctx context.Context, name string) (Value, error) {
	ref, ok := s.creds[name]
	if !ok {
		return Value{}, fmt.Errorf("connector %s has no credential %q", s.connector, name)
	}
	return s.r.resolve(ctx, s.connector, name, ref, s.ttl)
}

func (r *Resolver) resolve(ctx context.Context, connector, name, ref string, ttl time.Duration) (Value, error) {
	parsed, err := ParseRef(ref)
	if err != nil {
		return Value{}, &Error{Ref: ref, Err: err}
	}
	p, ok := r.providers[parsed.Scheme]
	if !ok {
		return Value{}, &Error{Ref: ref, Err: ErrUnsupported}
	}
	if u, ok := p.(Uncached); ok && u.Uncached() {
		ttl = 0
	}
	key := cacheKey{connector, ref}
	now := r.now()
	if ttl > 0 {
		r.mu.Lock()
		c, ok := r.cache[key]
		if ok && now.Before(c.expires) {
			r.mu.Unlock()
			return c.v, nil
		}
		delete(r.cache, key)
		r.mu.Unlock()
	}
	v, err := p.Resolve(ctx, parsed)
	if err != nil {
		var se *Error
		if !errors.As(err, &se) {
			err = &Error{Ref: ref, Err: err}
		}
		return Value{}, err
	}
	if v.Empty() {
		return Value{}, &Error{Ref: ref, Err: ErrNotFound, Reason: "the value is empty"}
	}
	// Registered before anyone sees it, so no path can emit it unredacted.
	r.redactor.Add(name, v)
	if ttl > 0 {
		r.mu.Lock()
		r.cache[key] = cached{v: v, expires: now.Add(ttl)}
		r.mu.Unlock()
	}
	return v, nil
}

// Forget drops every cached value, so that the next call resolves afresh.
func (r *Resolver) Forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.cache)
}
