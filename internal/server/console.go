package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/web"
)

// The web console: server-rendered pages for approvers at / and under
// /console/. Sign-in and sessions are in console_session.go. Every vote
// goes through Server.decide with channel web, the same path as the API's
// POST /v1/approvals/{id}/approve; every list goes through
// Dispatcher.Approvals, so tenant and scope are the API's exactly.
//
//	GET  /                                    inbox (pending approvals)
//	GET  /console/history                     decided approvals, newest first
//	GET  /console/signin   POST /console/signin   POST /console/signout
//	POST /console/approvals/{id}/approve|deny form: csrf, comment
//	GET  /console/static/...                  embedded CSS and JS
//
// Admin tokens sign in too, to the dashboard and agents pages
// (console_admin.go, which also says who sees what).

const (
	inboxLimit   = 100
	historyLimit = 50
	// consoleCSP allows only the console's own files: no inline script or
	// style, no framing, forms post back here only.
	consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

var consoleFuncs = template.FuncMap{
	"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"join":  strings.Join,
	"short": func(v string) string { return v[:min(len(v), 12)] }, // a config version as people read it
	"ago":   func(now, t time.Time) string { return human(now.Sub(t)) },
	"until": func(now, t time.Time) string { return human(t.Sub(now)) },
	"approvals": func(votes []approval.Vote) int {
		n := 0
		for _, v := range votes {
			if v.Approve {
				n++
			}
		}
		return n
	},
	"pretty": func(b []byte) string {
		var out bytes.Buffer
		if len(b) == 0 || json.Indent(&out, b, "", "  ") != nil {
			return string(b)
		}
		return out.String()
	},
}

// consolePages holds one template set per page, each with the layout.
var consolePages = func() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range []string{"signin", "inbox", "history", "error", "dashboard", "agents"} {
		pages[name] = template.Must(template.New(name).Funcs(consoleFuncs).
			ParseFS(web.FS, "templates/layout.html", "templates/"+name+".html"))
	}
	return pages
}()

// pageData is what every page template gets; pages use the fields they need.
type pageData struct {
	Title, Nav string
	Who, CSRF  string // signed in: the approver and the session's CSRF token; sign-in page: its CSRF token
	Flash      string
	FlashKind  string // "" or "error"
	Message    string // sign-in and error pages
	Heading    string
	ErrorID    string
	Items      []dispatch.ApprovalView
	Limit      int
	Now        time.Time // for ages and time left
	Admin      bool      // signed in with an admin token: the admin pages' navigation (console_admin.go)
	View       any       // an admin page's own data
}

// human renders a duration the way a person reads an age: 45s, 12m, 3h5m, 2d.
func human(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// signInRedirect sends the browser to the sign-in page; reason is a key of
// signInMessages.
type signInRedirect struct{ reason string }

func (e signInRedirect) Error() string { return "sign in: " + e.reason }

var signInMessages = map[string]string{
	"expired":   "Your session expired. Sign in again.",
	"revoked":   "Your token is no longer valid. Sign in with a current approver token.",
	"signedout": "You are signed out.",
}

func (s *Server) mountConsole(mux *http.ServeMux) {
	mux.Handle("GET /{$}", s.page(s.getInbox))
	mux.Handle("GET /console/history", s.page(s.getHistory))
	mux.Handle("GET /console/signin", s.page(s.getSignIn))
	mux.Handle("POST /console/signin", s.page(s.postSignIn))
	mux.Handle("POST /console/signout", s.page(s.postSignOut))
	mux.Handle("POST /console/approvals/{id}/approve", s.page(func(w http.ResponseWriter, r *http.Request) error { return s.postVote(w, r, true) }))
	mux.Handle("POST /console/approvals/{id}/deny", s.page(func(w http.ResponseWriter, r *http.Request) error { return s.postVote(w, r, false) }))
	s.mountAdmin(mux) // dashboard, agents, kill switch, rollback (console_admin.go)
	static, _ := fs.Sub(web.FS, "static")
	files := http.StripPrefix("/console/static/", http.FileServerFS(static))
	mux.Handle("GET /console/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	mux.Handle("/console/", s.page(func(w http.ResponseWriter, r *http.Request) error {
		return newError(http.StatusNotFound, "not_found", "There is no such page.")
	}))
}

// page adapts a console handler: security headers on every answer, and
// errors rendered as a friendly page (or a redirect to sign in) that shows
// only the safe message classify gives, never the cause.
func (s *Server) page(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", consoleCSP)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				id := call.NewID("err", s.now())
				s.log.ErrorContext(r.Context(), "console panic", "error_id", id, "method", r.Method, "path", r.URL.Path, "panic", v)
				s.errorPage(w, http.StatusInternalServerError, "Something went wrong on warden's side.", id)
			}
		}()
		err := h(w, r)
		if err == nil {
			return
		}
		var sr signInRedirect
		if errors.As(err, &sr) {
			if sr.reason != "" {
				setCookie(w, r, sessionCookie, "", "/", 0)
			}
			http.Redirect(w, r, "/console/signin?m="+sr.reason, http.StatusSeeOther)
			return
		}
		status, code, msg := classify(err)
		var id string
		if status >= 500 {
			id = call.NewID("err", s.now())
			s.log.ErrorContext(r.Context(), "console request failed", "error_id", id, "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
			msg = "Something went wrong on warden's side."
		} else {
			s.log.DebugContext(r.Context(), "console request refused", "method", r.Method, "path", r.URL.Path, "status", status, "code", code)
		}
		s.errorPage(w, status, msg, id)
	})
}

func (s *Server) errorPage(w http.ResponseWriter, status int, msg, id string) {
	heading := http.StatusText(status)
	if heading == "" {
		heading = "Error"
	}
	s.render(w, status, "error", pageData{Title: heading, Heading: heading, Message: msg, ErrorID: id})
}

// render executes a page into a buffer first, so a template error becomes
// a 500 page instead of half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, data pageData) {
	var buf bytes.Buffer
	if err := consolePages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		id := call.NewID("err", s.now())
		s.log.Error("console template failed", "error_id", id, "page", name, "err", err)
		buf.Reset()
		status = http.StatusInternalServerError
		fmt.Fprintf(&buf, "<!doctype html><title>warden</title><p>Something went wrong on warden's side (error id %s).</p>", id)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// consoleUser returns the request's session and its approver, freshly
// authenticated: a revoked token or an expired session sends the browser
// to sign in.
func (s *Server) consoleUser(r *http.Request) (*session, call.Principal, error) {
	sess, expired := s.sessions.get(r, s.now())
	if sess == nil {
		reason := ""
		if expired {
			reason = "expired"
		}
		return nil, call.Principal{}, signInRedirect{reason}
	}
	p, err := s.auth.Authenticate(r.Context(), sess.token)
	if err == nil && !consoleRole(p.Role) {
		err = ErrBadToken
	}
	if errors.Is(err, ErrBadToken) {
		s.sessions.drop(r)
		return nil, call.Principal{}, signInRedirect{"revoked"}
	}
	if err != nil {
		return nil, call.Principal{}, &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "cannot check the token right now", cause: err}
	}
	return sess, p, nil
}

// parseForm reads a POSTed form within the body limit.
func (s *Server) parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
	if err := r.ParseForm(); err != nil {
		return newError(http.StatusBadRequest, "invalid_form", "The form could not be read.")
	}
	return nil
}

var errCSRF = newError(http.StatusForbidden, "csrf", "This form has expired or did not come from this console. Go back, reload the page and try again.")

// consolePost authenticates a POST from a signed-in approver and checks its
// CSRF token.
func (s *Server) consolePost(w http.ResponseWriter, r *http.Request) (*session, call.Principal, error) {
	if err := s.parseForm(w, r); err != nil {
		return nil, call.Principal{}, err
	}
	sess, p, err := s.consoleUser(r)
	if err != nil {
		return nil, call.Principal{}, err
	}
	if !sameToken(r.PostForm.Get(csrfField), sess.csrf) {
		return nil, call.Principal{}, errCSRF
	}
	return sess, p, nil
}

func (s *Server) signedIn(sess *session, p call.Principal, title, nav string) pageData {
	d := pageData{Title: title, Nav: nav, Who: p.Identity(), CSRF: sess.csrf, Now: s.now(), Admin: p.Role == call.RoleAdmin}
	if msg, ok := s.sessions.takeFlash(sess); msg != "" {
		d.Flash = msg
		if !ok {
			d.FlashKind = "error"
		}
	}
	return d
}

func (s *Server) getInbox(w http.ResponseWriter, r *http.Request) error {
	sess, p, err := s.consoleUser(r)
	if err != nil {
		return err
	}
	if p.Role == call.RoleAdmin { // admins cannot decide: their home is the dashboard
		http.Redirect(w, r, "/console/dashboard", http.StatusSeeOther)
		return nil
	}
	items, err := s.d.Approvals(r.Context(), p, "pending", inboxLimit)
	if err != nil {
		return err
	}
	d := s.signedIn(sess, p, "Inbox", "inbox")
	d.Items = items
	s.render(w, http.StatusOK, "inbox", d)
	return nil
}

func (s *Server) getHistory(w http.ResponseWriter, r *http.Request) error {
	sess, p, err := s.consoleUser(r)
	if err != nil {
		return err
	}
	var items []dispatch.ApprovalView
	for _, status := range []string{"approved", "denied", "expired"} {
		list, err := s.d.Approvals(r.Context(), p, status, historyLimit)
		if err != nil {
			return err
		}
		items = append(items, list...)
	}
	slices.SortStableFunc(items, func(a, b dispatch.ApprovalView) int { return b.RequestedAt.Compare(a.RequestedAt) })
	d := s.signedIn(sess, p, "History", "history")
	d.Items = items[:min(len(items), historyLimit)]
	d.Limit = historyLimit
	s.render(w, http.StatusOK, "history", d)
	return nil
}

func (s *Server) getSignIn(w http.ResponseWriter, r *http.Request) error {
	if sess, _ := s.sessions.get(r, s.now()); sess != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	s.signInPage(w, r, http.StatusOK, signInMessages[r.URL.Query().Get("m")])
	return nil
}

// signInPage renders the sign-in form with a fresh double-submit CSRF
// cookie.
func (s *Server) signInPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	csrf := randomToken()
	setCookie(w, r, signinCookie, csrf, "/console/signin", signinTTL)
	s.render(w, status, "signin", pageData{Title: "Sign in", CSRF: csrf, Message: msg})
}

// postSignIn exchanges an approver or admin token for a session (what each
// sees: console_admin.go). Auditor and agent tokens do not sign in.
func (s *Server) postSignIn(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(w, r); err != nil {
		return err
	}
	c, err := r.Cookie(signinCookie)
	if err != nil || !sameToken(r.PostForm.Get(csrfField), c.Value) {
		return errCSRF
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		s.signInPage(w, r, http.StatusBadRequest, "Paste an approver or admin token.")
		return nil
	}
	p, err := s.auth.Authenticate(r.Context(), token)
	if errors.Is(err, ErrBadToken) {
		s.signInPage(w, r, http.StatusUnauthorized, "Unknown or revoked token.")
		return nil
	}
	if err != nil {
		return &apiError{status: http.StatusServiceUnavailable, code: "unavailable", message: "cannot check the token right now", cause: err}
	}
	if !consoleRole(p.Role) {
		s.signInPage(w, r, http.StatusForbidden, "Only approver and admin tokens can sign in to the console; this is "+article(string(p.Role))+" token.")
		return nil
	}
	s.sessions.drop(r) // a new session id at every sign-in: no fixation
	id, _ := s.sessions.create(token, s.now())
	if id == "" {
		return newError(http.StatusServiceUnavailable, "too_many_sessions", "Too many console sessions are open; try again later.")
	}
	setCookie(w, r, signinCookie, "", "/console/signin", 0)
	setCookie(w, r, sessionCookie, id, "/", sessionTTL)
	s.log.InfoContext(r.Context(), "console sign-in", "who", p.Identity())
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

func article(role string) string {
	if role != "" && strings.ContainsRune("aeiou", rune(role[0])) {
		return "an " + role
	}
	return "a " + role
}

func (s *Server) postSignOut(w http.ResponseWriter, r *http.Request) error {
	if _, _, err := s.consolePost(w, r); err != nil {
		var sr signInRedirect
		if errors.As(err, &sr) { // already signed out
			return signInRedirect{"signedout"}
		}
		return err
	}
	s.sessions.drop(r)
	return signInRedirect{"signedout"}
}

// postVote records an approval or denial with channel web through the
// API's path (Server.decide: Dispatcher.Decide, then ExecuteApproval), and
// reports the result on the inbox.
func (s *Server) postVote(w http.ResponseWriter, r *http.Request, approve bool) error {
	sess, p, err := s.consolePost(w, r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	st, err := s.decide(r, p, dispatch.Vote{ApprovalID: id, Approve: approve, Comment: r.PostForm.Get("comment"), Channel: approval.ChannelWeb})
	if err != nil {
		status, _, msg := classify(err)
		if status >= 500 {
			return err
		}
		// Refused (already decided, expired, not yours...): say so on the inbox.
		s.sessions.setFlash(sess, msg, false)
	} else {
		s.sessions.setFlash(sess, voteResult(st, approve), true)
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

func voteResult(st *dispatch.State, approve bool) string {
	what := st.Connector + "." + st.Action + " for " + st.Agent
	switch {
	case !approve:
		return "Denied " + what + "."
	case st.Status == dispatch.StatusPending && st.Approval != nil:
		return fmt.Sprintf("Your approval of %s is recorded: %d of %d needed.", what, st.Approval.Approvals(), st.Approval.MinApprovals)
	case st.Status == dispatch.StatusSucceeded:
		return "Approved " + what + ": it ran and succeeded."
	case st.Status == dispatch.StatusFailed:
		return "Approved " + what + ", but it failed: " + st.Error
	}
	return "Approved " + what + ": it is " + st.Status + "."
}
