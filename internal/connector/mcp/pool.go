// Package mcp is the mcp connector: an upstream MCP server, launched as a
// command (stdio) or reached at a URL (Streamable HTTP), whose tools are the
// connector's actions.
//
// Upstream sessions live in a Pool that outlives config versions: a
// snapshot's executor names its upstream by connector name and a hash of
// its launch (command, args, env and header templates, credential
// references, timeout), so a reload that leaves the launch alone keeps the
// running upstream. An upstream starts on first use, is restarted with
// backoff when it dies, is stopped when a newer launch of the same
// connector has started, or when the live config no longer has its launch
// (Pool.Retain), once its own calls are done, and every upstream is
// stopped by Pool.Close at shutdown.
//
// Nothing on a call's path waits for a session to close: closing one waits
// for every call outstanding on it. A call that times out kills its stdio
// upstream's process (which ends the other calls on it at once) and leaves
// the session's close to a goroutine; a cancelled call just returns (the
// SDK tells the upstream with notifications/cancelled).
//
// Credentials reach the upstream only through its environment or HTTP
// headers, rendered from {credentials.NAME} templates at session start;
// everything coming back is scrubbed by the process's redactor before the
// dispatcher sees it. A stdio upstream inherits nothing of warden's own
// environment but a short list (PATH, HOME, USER, locale, TZ, TMPDIR).
package mcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/connector/template"
)

// defaultTimeout bounds one tools/call, and a session start, when the
// connector sets no timeout.
const defaultTimeout = 30 * time.Second

// toolsTTL is how long an upstream's tool list is reused (it is dropped
// at once when the upstream says its list changed).
const toolsTTL = 30 * time.Second

// Backoff bounds for restarting an upstream that failed to start or died.
// The backoff keeps growing across restarts until a session has stayed up
// for stableAfter or a call on it succeeded: an upstream that starts fine
// and dies on every call is not restarted every 200 ms.
const (
	minBackoff  = 200 * time.Millisecond
	maxBackoff  = 30 * time.Second
	stableAfter = 10 * time.Second
)

// errTimedOut is the cause of a call's context when the launch's own
// timeout ended it (rather than the caller cancelling or its deadline).
var errTimedOut = errors.New("the upstream did not answer within the connector's timeout")

// inheritedEnv is what a stdio upstream gets of warden's own environment:
// enough to find and run a program, nothing that could hold a secret.
var inheritedEnv = []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"}

// Launch is what identifies one upstream: a connector's launch config.
// Env and Headers are templates that name only {credentials.NAME}.
type Launch struct {
	Connector   string            `json:"connector"`
	Command     string            `json:"command,omitempty"`
	Args        []string          `json:"args,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	URL         string            `json:"url,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Credentials map[string]string `json:"credentials,omitempty"` // name → reference; a changed reference is a new upstream
	Timeout     time.Duration     `json:"timeout,omitempty"`
	Sandbox     *config.Sandbox   `json:"sandbox,omitempty"` // a changed sandbox is a new upstream
	// Start, if set, starts a stdio upstream instead of os/exec (the
	// sandbox's seam): it returns the transport to the started process
	// and a function that kills the process at once. Not part of the
	// identity.
	Start func(ctx context.Context, cmd string, args, env []string) (sdk.Transport, func(), error) `json:"-"`
}

// key names the upstream in the pool: what Pool.Retain takes. It costs a
// JSON encoding and a hash, so an executor computes it once.
func (l *Launch) key() string {
	b, _ := json.Marshal(l) // maps marshal sorted: the same launch, the same key
	sum := sha256.Sum256(b)
	return l.Connector + "/" + hex.EncodeToString(sum[:8])
}

func (l *Launch) timeout() time.Duration {
	if l.Timeout > 0 {
		return l.Timeout
	}
	return defaultTimeout
}

// credential resolves a credential by name for a session start.
type credential func(ctx context.Context, name string) (string, error)

// errClosed is returned once the pool is closed.
var errClosed = errors.New("mcp connector: shutting down")

// startError is a failure to start an upstream session.
type startError struct {
	Credential string // set when a credential could not be resolved
	Err        error
}

func (e *startError) Error() string {
	if e.Credential != "" {
		return fmt.Sprintf("credential %q could not be resolved: %v", e.Credential, e.Err)
	}
	return "starting the upstream: " + e.Err.Error()
}

func (e *startError) Unwrap() error { return e.Err }

// Pool holds upstream sessions across config versions. It is safe for
// concurrent use.
type Pool struct {
	log *slog.Logger

	mu     sync.Mutex
	ups    map[string]*upstream // by launch key
	gen    uint64               // the last generation handed out
	closed bool
	// kept is the set of launch keys the last Retain kept, and keptGen the
	// generation it was called at: a launch of that generation or older
	// that is not in kept belongs to a config version no longer live.
	kept    map[string]bool
	keptGen uint64
}

// NewPool returns an empty pool.
func NewPool(log *slog.Logger) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pool{log: log, ups: map[string]*upstream{}}
}

// Close stops every upstream. Calls after Close fail with errClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	ups := p.ups
	p.ups = map[string]*upstream{}
	p.mu.Unlock()
	for _, u := range ups {
		u.stop()
	}
	return nil
}

// Retain retires every upstream whose launch key is not in keys (the
// launches of the config version just made live): each stops once its
// calls in flight are done, so that a connector removed from the config
// does not keep its process, and the credentials in its environment,
// running until shutdown. A call still made under an older config version
// with a launch not in keys gets a short-lived upstream of its own.
func (p *Pool) Retain(keys []string) {
	kept := make(map[string]bool, len(keys))
	for _, k := range keys {
		kept[k] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.kept, p.keptGen = kept, p.gen
	for k, u := range p.ups {
		if !kept[k] {
			delete(p.ups, k)
			u.log.Info("mcp upstream no longer in the live config; it stops once its calls are done")
			u.retire()
		}
	}
}

// generation orders launches: each executor takes one when it is built,
// so a later config version's launch is newer than an earlier one's.
func (p *Pool) generation() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	return p.gen
}

// acquire returns the upstream for l, whose key is k (l.key()), counting
// one user; release it with done. A newer launch of a connector retires the older ones: each stops
// once its last user is done. An older one (a call still running under
// the previous config version) gets its own upstream, retired at once, so
// that it cannot displace the newer one.
func (p *Pool) acquire(l *Launch, k string, gen uint64) (*upstream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	u, ok := p.ups[k]
	if !ok {
		u = &upstream{launch: *l, gen: gen, log: p.log.With("connector", l.Connector)}
		newest := p.kept == nil || gen > p.keptGen || p.kept[k] // else: a config version no longer live
		for _, other := range p.ups {
			if other.launch.Connector == l.Connector && other.gen > gen {
				newest = false
			}
		}
		if !newest {
			u.retired = true // stops when this call is done
		} else {
			p.ups[k] = u
			for ok2, old := range p.ups {
				if ok2 != k && old.launch.Connector == l.Connector {
					delete(p.ups, ok2)
					old.retire()
				}
			}
		}
	}
	if gen > u.gen {
		u.gen = gen // the same launch in a newer config version
	}
	u.users++
	return u, nil
}

// upstream is one upstream MCP server and its current session.
type upstream struct {
	launch Launch
	log    *slog.Logger

	// mu guards everything below; it is never held while a session
	// starts (starting is closed when a start ends).
	mu       sync.Mutex
	session  *sdk.ClientSession
	kill     func()         // kills session's process at once; nil for a url upstream
	upAt     time.Time      // when session started
	starting chan struct{}  // non-nil while a session starts (begin)
	begins   sync.WaitGroup // starts in progress, awaited by stop
	lastErr  error          // why the last start failed; nil once one succeeds
	failures int            // consecutive start failures or deaths, reset once a session proves stable
	retryAt  time.Time      // no start before this (backoff)
	tools    []*sdk.Tool
	toolsAt  time.Time
	// users, retired and gen are guarded by Pool.mu; the two locks are
	// never held together.
	gen     uint64 // the newest generation that uses this launch
	users   int    // calls in progress
	retired bool   // a newer launch replaced it: stop when users reach 0
	stopped bool
}

func (u *upstream) done(p *Pool) {
	p.mu.Lock()
	u.users--
	stop := u.retired && u.users == 0
	p.mu.Unlock()
	if stop {
		go u.stop() // not on the call's path: closing waits for the process to exit
	}
}

func (u *upstream) retire() {
	// Called with Pool.mu held.
	u.retired = true
	if u.users == 0 {
		go u.stop()
	}
}

// stop ends the session and forbids new ones; a start in progress is
// awaited, and its session closed.
func (u *upstream) stop() {
	u.mu.Lock()
	u.stopped = true
	s := u.session
	u.session, u.kill = nil, nil
	u.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
	u.begins.Wait()
}

// hung ends a session whose upstream did not answer in time: its process
// is killed at once (ending every call on it), and the session is closed in
// the background, since closing waits for the calls outstanding on it. The
// next call starts a new one.
func (u *upstream) hung(s *sdk.ClientSession, kill func()) {
	u.mu.Lock()
	if u.session == s {
		u.session, u.kill = nil, nil
	}
	u.mu.Unlock()
	if kill != nil {
		kill()
	}
	go s.Close()
}

// get returns a live session, and the function that kills its process,
// starting one if needed. Concurrent callers share one start, each waiting
// no longer than its own ctx allows.
func (u *upstream) get(ctx context.Context, cred credential) (*sdk.ClientSession, func(), error) {
	for {
		u.mu.Lock()
		switch {
		case u.stopped:
			u.mu.Unlock()
			return nil, nil, errClosed
		case u.session != nil:
			s, kill := u.session, u.kill
			u.mu.Unlock()
			return s, kill, nil
		case u.starting != nil:
			ch := u.starting
			u.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			u.mu.Lock()
			s, kill, err := u.session, u.kill, u.lastErr
			u.mu.Unlock()
			if s != nil {
				return s, kill, nil
			}
			if err != nil {
				return nil, nil, err // this start failed: say why, rather than wait out its backoff
			}
			continue
		}
		wait := time.Until(u.retryAt)
		if wait > 0 {
			// Restarting after a failure: wait out the backoff if the
			// call can afford it, else say so.
			u.mu.Unlock()
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+time.Second {
				return nil, nil, &startError{Err: fmt.Errorf("the upstream failed recently; next start in %s", wait.Round(time.Millisecond))}
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return nil, nil, ctx.Err()
			}
		}
		// Start in the background, bounded by the launch's own timeout,
		// so that a caller with a short deadline (a tools/list) can give
		// up waiting without cutting a slow start short for the others.
		u.starting = make(chan struct{})
		u.begins.Add(1)
		u.mu.Unlock()
		go u.begin(context.WithoutCancel(ctx), cred)
	}
}

// begin starts a session and publishes the outcome: the session, or a
// failure and its backoff. Called with u.starting set.
func (u *upstream) begin(ctx context.Context, cred credential) {
	defer u.begins.Done()
	s, kill, err := u.start(ctx, cred)
	u.mu.Lock()
	defer u.mu.Unlock()
	close(u.starting)
	u.starting = nil
	switch {
	case err != nil:
		u.failed()
		u.lastErr = err
	case u.stopped:
		go s.Close()
	default:
		// failures is not reset here: an upstream that starts and then
		// dies on every call keeps backing off (see stable).
		u.lastErr = nil
		u.session, u.kill, u.upAt = s, kill, time.Now()
		u.tools = nil
		go u.watch(s)
	}
}

// stable resets the backoff: a call on s succeeded. Called without u.mu.
func (u *upstream) stable(s *sdk.ClientSession) {
	u.mu.Lock()
	if u.session == s {
		u.failures = 0
	}
	u.mu.Unlock()
}

// failed counts a failure and sets the backoff. Called with u.mu held.
func (u *upstream) failed() {
	u.failures++
	d := minBackoff << min(u.failures-1, 10)
	u.retryAt = time.Now().Add(min(d, maxBackoff))
}

// watch notices a session that ended without being asked to (the process
// died): it is dropped, and the next call restarts it after the backoff.
func (u *upstream) watch(s *sdk.ClientSession) {
	u.lost(s, s.Wait())
}

// lost drops a session that ended on its own and sets the backoff; one
// closed on purpose (no longer current) is left alone.
func (u *upstream) lost(s *sdk.ClientSession, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.session != s {
		return
	}
	if time.Since(u.upAt) >= stableAfter {
		u.failures = 0 // it ran for a while: start over at the shortest backoff
	}
	u.session, u.kill = nil, nil
	u.failed()
	u.log.Warn("mcp upstream ended; it restarts on the next call", "err", err, "retry_in", time.Until(u.retryAt).Round(time.Millisecond))
}

// start launches the upstream and completes the MCP handshake.
func (u *upstream) start(ctx context.Context, cred credential) (*sdk.ClientSession, func(), error) {
	l := &u.launch
	ctx, cancel := context.WithTimeout(ctx, l.timeout())
	defer cancel()
	render := func(what string, tmpl string) (string, error) {
		t, err := template.Parse(tmpl)
		if err != nil {
			return "", &startError{Err: fmt.Errorf("%s: %w", what, err)}
		}
		var failed string
		s, err := template.Render(t, template.Data{Credential: func(name string) (string, error) {
			v, err := cred(ctx, name)
			if err != nil {
				failed = name
			}
			return v, err
		}}, nil)
		if err != nil {
			return "", &startError{Credential: failed, Err: err}
		}
		return s, nil
	}
	client := sdk.NewClient(&sdk.Implementation{Name: "warden", Version: "1"}, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			u.mu.Lock()
			u.tools = nil
			u.mu.Unlock()
		},
	})
	var transport sdk.Transport
	var kill func()
	if l.URL != "" {
		h := http.Header{}
		for _, name := range sortedKeys(l.Headers) {
			v, err := render("headers."+name, l.Headers[name])
			if err != nil {
				return nil, nil, err
			}
			h.Set(name, v)
		}
		transport = &sdk.StreamableClientTransport{
			Endpoint:             l.URL,
			HTTPClient:           &http.Client{Transport: &headerTransport{h: h, next: http.DefaultTransport}},
			DisableStandaloneSSE: true,
			MaxRetries:           -1,
		}
	} else {
		env := make([]string, 0, len(inheritedEnv)+len(l.Env))
		for _, k := range inheritedEnv {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
		for _, name := range sortedKeys(l.Env) {
			v, err := render("env."+name, l.Env[name])
			if err != nil {
				return nil, nil, err
			}
			env = append(env, name+"="+v)
		}
		if l.Start != nil {
			t, k, err := l.Start(ctx, l.Command, l.Args, env)
			if err != nil {
				return nil, nil, &startError{Err: err}
			}
			transport, kill = t, k
		} else {
			// Not CommandContext: the process outlives this call.
			cmd := exec.Command(l.Command, l.Args...)
			cmd.Env = env
			cmd.Stderr = &logWriter{log: u.log}
			transport = &sdk.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}
			kill = func() {
				if cmd.Process != nil { // started by Connect, before start returns
					_ = cmd.Process.Kill()
				}
			}
		}
	}
	s, err := client.Connect(ctx, transport, nil)
	if err != nil {
		if kill != nil {
			kill() // a process that started but failed the handshake
		}
		return nil, nil, &startError{Err: err}
	}
	u.log.Info("mcp upstream started", "upstream", u.launch.describe())
	return s, kill, nil
}

func (l *Launch) describe() string {
	if l.URL != "" {
		return l.URL
	}
	return l.Command
}

// headerTransport adds the connector's headers to every request.
type headerTransport struct {
	h    http.Header
	next http.RoundTripper
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.h {
		r.Header[k] = v
	}
	return t.next.RoundTrip(r)
}

// logWriter logs an upstream's stderr line by line (through the process's
// redacting logger), each line capped.
type logWriter struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > 4096 {
				w.log.Debug("mcp upstream stderr", "line", string(w.buf[:4096]))
				w.buf = w.buf[:0]
			}
			return len(b), nil
		}
		line := w.buf[:min(i, 4096)]
		w.log.Debug("mcp upstream stderr", "line", string(line))
		w.buf = w.buf[i+1:]
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Call runs one tool on l's upstream; key is l.key().
func (p *Pool) Call(ctx context.Context, l *Launch, key string, gen uint64, cred credential, tool string, args map[string]any) (*sdk.CallToolResult, error) {
	u, err := p.acquire(l, key, gen)
	if err != nil {
		return nil, err
	}
	defer u.done(p)
	ctx, cancel := context.WithTimeoutCause(ctx, l.timeout(), errTimedOut)
	defer cancel()
	s, kill, err := u.get(ctx, cred)
	if err != nil {
		return nil, err
	}
	res, err := s.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
	switch {
	case err == nil:
		u.stable(s)
	case errors.Is(err, sdk.ErrConnectionClosed):
		u.lost(s, err) // before watch notices: the next call starts a new one
		go s.Close()   // never on the call's path: Close waits for every call on s
	case context.Cause(ctx) == errTimedOut && l.URL == "":
		// A stdio upstream that does not answer in time may be hung:
		// kill it rather than queue every later call behind it. A call
		// the caller cancelled (the kill switch, a client gone) leaves
		// the shared upstream alone: the SDK has told it to stop.
		u.log.Warn("mcp upstream did not answer in time; restarting it", "tool", tool, "timeout", l.timeout())
		u.hung(s, kill)
	}
	return res, err
}

// Tools returns l's upstream's tools, cached briefly; key is l.key().
func (p *Pool) Tools(ctx context.Context, l *Launch, key string, gen uint64, cred credential) ([]*sdk.Tool, error) {
	u, err := p.acquire(l, key, gen)
	if err != nil {
		return nil, err
	}
	defer u.done(p)
	u.mu.Lock()
	if u.tools != nil && time.Since(u.toolsAt) < toolsTTL && u.session != nil {
		t := u.tools
		u.mu.Unlock()
		return t, nil
	}
	u.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, l.timeout())
	defer cancel()
	s, _, err := u.get(ctx, cred)
	if err != nil {
		return nil, err
	}
	var tools []*sdk.Tool
	for t, err := range s.Tools(ctx, nil) {
		if err != nil {
			return nil, err
		}
		tools = append(tools, t)
		if len(tools) > 10000 {
			return nil, errors.New("the upstream lists more than 10000 tools")
		}
	}
	u.mu.Lock()
	if u.session == s {
		u.tools, u.toolsAt = tools, time.Now()
	}
	u.mu.Unlock()
	return tools, nil
}
