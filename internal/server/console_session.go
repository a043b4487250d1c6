package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// Console sessions
//
// Signing in exchanges an approver token for a session: 256 random bits in
// an HttpOnly, SameSite=Strict cookie (Secure over TLS). The server keeps
// the session — keyed by the SHA-256 of the cookie value, so the map holds
// nothing a cookie could be rebuilt from — with the token, which never goes
// back to the browser: every request re-authenticates it through the
// server's Authenticator, so revoking the token ends the session within the
// token cache's lifetime. Sessions live in this process's memory: a restart
// signs everyone out, and behind several replicas the console needs sticky
// sessions.
//
// CSRF: each session has its own random token, embedded in every form and
// compared in constant time on every POST. The sign-in form, which has no
// session yet, uses a double-submit cookie (sessionless but SameSite=Strict
// and HttpOnly) carrying the same value as its hidden field.

const (
	sessionCookie = "warden_session"
	signinCookie  = "warden_signin"
	sessionTTL    = 8 * time.Hour
	signinTTL     = time.Hour
	maxSessions   = 10000
	csrfField     = "csrf"
)

type session struct {
	token   string // the bearer token: server memory only, never in a cookie
	csrf    string
	expires time.Time
	flash   string // shown once on the next page
	flashOK bool
}

type sessions struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

func newSessions() *sessions { return &sessions{m: map[[sha256.Size]byte]*session{}} }

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for token and returns the cookie value, or ""
// when too many sessions are live.
func (ss *sessions) create(token string, now time.Time) (string, *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= maxSessions {
		for k, s := range ss.m {
			if !now.Before(s.expires) {
				delete(ss.m, k)
			}
		}
		if len(ss.m) >= maxSessions {
			return "", nil
		}
	}
	id := randomToken()
	s := &session{token: token, csrf: randomToken(), expires: now.Add(sessionTTL)}
	ss.m[sha256.Sum256([]byte(id))] = s
	return id, s
}

// get returns the live session the request's cookie names; an expired one
// is removed and reported as expired.
func (ss *sessions) get(r *http.Request, now time.Time) (s *session, expired bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, false
	}
	k := sha256.Sum256([]byte(c.Value))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s = ss.m[k]
	if s == nil {
		return nil, false
	}
	if !now.Before(s.expires) {
		delete(ss.m, k)
		return nil, true
	}
	return s, false
}

// drop ends the session the request's cookie names.
func (ss *sessions) drop(r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		ss.mu.Lock()
		delete(ss.m, sha256.Sum256([]byte(c.Value)))
		ss.mu.Unlock()
	}
}

// takeFlash returns and clears the session's one-shot message.
func (ss *sessions) takeFlash(s *session) (string, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	msg, ok := s.flash, s.flashOK
	s.flash, s.flashOK = "", false
	return msg, ok
}

func (ss *sessions) setFlash(s *session, msg string, ok bool) {
	ss.mu.Lock()
	s.flash, s.flashOK = msg, ok
	ss.mu.Unlock()
}

// sameToken compares a submitted CSRF token with the expected one in
// constant time; an empty expected or submitted value never matches.
func sameToken(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, ttl time.Duration) {
	c := &http.Cookie{
		Name: name, Value: value, Path: path,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		MaxAge: int(ttl / time.Second),
	}
	if ttl <= 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}
