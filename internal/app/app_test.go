package app_test

// Whole-system tests of `warden serve`: warden runs in-process through
// app.Run, or as a real process (this test binary re-executed as the warden
// command, see TestMain), on 127.0.0.1 with its SQLite store in a temp dir
// and an http connector pointed at an upstream the test controls. They
// check what the design promises beyond single requests: a tamper-evident
// trail, write-ahead audit that survives kill -9, graceful shutdown, and
// failing closed when the audit cannot be written.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/app/apptest"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/cli"
	"github.com/warden-dev/warden/internal/store/postgres/pgtest"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// execEnv, set in a child's environment, makes this test binary run the
// warden command line instead of the tests: the same code as
// cmd/warden/main.go, with no separate build (and, under -race, a
// race-checked server).
const execEnv = "WARDEN_APP_TEST_EXEC"

func TestMain(m *testing.M) {
	if os.Getenv(execEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(pgtest.Main(m)) // PostgreSQL for replicas_test.go, started on first use
}

// config is the test config; %s is the upstream's base URL. Every action
// puts a key the test chooses last in the upstream path, so the upstream can
// tell which call reached it.
const config = `
kind: agent
name: bot
owner: test@example.com
permissions:
  up: {get: on, create: on, purge: on, slow: on, pay: ask}
---
kind: connector
name: up
type: http
base_url: %s/api
timeout: 20s
actions:
  get:    {type: read, method: GET, path: "/items/{args.id}"}
  create: {type: write, method: POST, path: "/items/{args.tag}", body: "{args}"}
  purge:  {type: delete, method: DELETE, path: "/items/{args.tag}"}
  slow:   {type: read, method: GET, path: "/slow/{args.id}"}
  pay:    {type: external, method: POST, path: "/pay/{args.id}"}
---
kind: policy
name: test
rules:
  - name: size-limit
    match: {connector: up, action: create}
    decision: ALLOW_WITH_CONSTRAINTS
    constraints:
      args.size: {max: 10}
  - name: no-purge
    match: {connector: up, action: purge}
    decision: DENY
    reason: purging is never allowed
`

// upstream is what the connector calls. It counts requests by the last path
// segment (the key the test put in the call's args); requests under /slow/
// first announce themselves on entered, then hold until release is closed.
type upstream struct {
	*httptest.Server
	entered     chan string
	release     chan struct{}
	releaseOnce sync.Once

	mu   sync.Mutex
	seen map[string]int
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{entered: make(chan string, 16), release: make(chan struct{}), seen: map[string]int{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := path.Base(r.URL.Path)
		u.mu.Lock()
		u.seen[key]++
		u.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/api/slow/") {
			u.entered <- key
			select {
			case <-u.release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"key": key, "method": r.Method})
	}))
	t.Cleanup(func() {
		u.Release()
		u.Close()
	})
	return u
}

// Release lets every slow request finish.
func (u *upstream) Release() { u.releaseOnce.Do(func() { close(u.release) }) }

func (u *upstream) snapshot() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]int, len(u.seen))
	for k, v := range u.seen {
		out[k] = v
	}
	return out
}

func (u *upstream) total() int {
	n := 0
	for _, v := range u.snapshot() {
		n += v
	}
	return n
}

// setup writes the config for up into a temp dir and returns the config dir
// and a database path beside it.
func setup(t *testing.T, up *upstream) (cfgDir, db string) {
	t.Helper()
	return apptest.Config(t, fmt.Sprintf(config, up.URL))
}

// runInProcess runs warden in-process with a 10s grace period.
func runInProcess(t *testing.T, cfgDir, db string) *apptest.Server {
	t.Helper()
	return apptest.Start(t, app.Options{ConfigDir: cfgDir, DB: db, Grace: 10 * time.Second})
}

// openStore opens the database the way the CLI does, beside a running server.
func openStore(t *testing.T, db string) *sqlite.Store {
	t.Helper()
	st, err := app.OpenStore(context.Background(), db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.(*sqlite.Store)
}

func agentToken(t *testing.T, st *sqlite.Store) string {
	t.Helper()
	tok, _, err := st.CreateToken(context.Background(), call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "bot"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawDB opens the database file with a plain connection, as someone with
// write access to the file would.
func rawDB(t *testing.T, db string) *sql.DB {
	t.Helper()
	d, err := sql.Open("sqlite", db+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// callResult is the part of a call response the tests look at.
type callResult struct {
	HTTP     int    `json:"-"`
	ID       string `json:"id"`
	Decision string `json:"decision"`
	Status   string `json:"status"`
	Error    struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		ID      string `json:"id"` // server errors: the id in the server's log
	} `json:"error"`
	raw string
}

func postCall(ctx context.Context, hc *http.Client, url, token, action string, args map[string]any) (callResult, error) {
	b, err := json.Marshal(map[string]any{"connector": "up", "action": action, "args": args})
	if err != nil {
		return callResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/calls", bytes.NewReader(b))
	if err != nil {
		return callResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return callResult{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return callResult{}, err
	}
	r := callResult{HTTP: resp.StatusCode, raw: string(data)}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%d response is not JSON: %w: %s", resp.StatusCode, err, data)
	}
	return r, nil
}

func mustCall(t *testing.T, url, token, action string, args map[string]any) callResult {
	t.Helper()
	r, err := postCall(context.Background(), http.DefaultClient, url, token, action, args)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	return r
}

// verify runs `warden audit verify --db db` in-process.
func verify(t *testing.T, db string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Run(context.Background(), []string{"audit", "verify", "--db", db}, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

var verifyOK = regexp.MustCompile(`^ok: (\d+) records, chain intact`)

func TestAuditVerifyCatchesTampering(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	cfgDir, db := setup(t, up)
	srv := runInProcess(t, cfgDir, db)
	st := openStore(t, db)
	tok := agentToken(t, st)

	// Sequential calls give known seqs: 1-2 get, 3 purge, 4-5 create, 6-7
	// get, 8 purge.
	for i, c := range []struct {
		action string
		args   map[string]any
		want   int
	}{
		{"get", map[string]any{"id": "t1"}, 200},
		{"purge", map[string]any{"tag": "t2"}, 403},
		{"create", map[string]any{"tag": "t3", "size": 2}, 200},
		{"get", map[string]any{"id": "t4"}, 200},
		{"purge", map[string]any{"tag": "t5"}, 403},
	} {
		if r := mustCall(t, srv.URL, tok, c.action, c.args); r.HTTP != c.want {
			t.Fatalf("call %d (%s) = %d %s, want %d", i, c.action, r.HTTP, r.raw, c.want)
		}
	}
	const records = 8
	if err := srv.Stop(); err != nil {
		t.Fatalf("app.Run: %v", err)
	}

	code, out, errOut := verify(t, db)
	if m := verifyOK.FindStringSubmatch(out); code != 0 || m == nil || m[1] != fmt.Sprint(records) {
		t.Fatalf("verify of the untouched trail: exit %d, stdout %q, stderr %q; want 0 and %q", code, out, errOut, fmt.Sprintf("ok: %d records, chain intact", records))
	}
	if _, err := rawDB(t, db).Exec(`UPDATE audit_records SET agent = 'mallory' WHERE seq = 3`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("UPDATE of an audit record with the triggers in place: err = %v, want the append-only guard", err)
	}

	// rehash recomputes a tampered row's hash the way the writer would, so
	// that the row checks out on its own and only the chain gives it away.
	rehash := func(body string) string {
		sum := sha256.Sum256([]byte(body))
		return hex.EncodeToString(sum[:])
	}
	tests := []struct {
		name    string
		tamper  func(db *sql.DB) error
		wantSeq int
	}{
		{"a column changed", execAll(`UPDATE audit_records SET agent = 'mallory' WHERE seq = 3`), 3},
		{"a decision rewritten", execAll(`UPDATE audit_records SET decision = 'ALLOW' WHERE seq = 3`), 3},
		{"a body changed", execAll(`UPDATE audit_records SET body = replace(body, 'purging is never allowed', 'purging is fine') WHERE seq = 3`), 3},
		{"a body changed and re-hashed", func(db *sql.DB) error {
			var body string
			if err := db.QueryRow(`SELECT body FROM audit_records WHERE seq = 3`).Scan(&body); err != nil {
				return err
			}
			forged := strings.Replace(body, "purging is never allowed", "purging is fine", 1)
			if forged == body {
				return errors.New("the reason is not in the body")
			}
			if rehash(body) != mustHash(db, 3) {
				return errors.New("the stored hash is not SHA-256 of the body; the re-hash case tests nothing")
			}
			_, err := db.Exec(`UPDATE audit_records SET body = ?, hash = ? WHERE seq = 3`, forged, rehash(forged))
			return err
		}, 4},
		{"a row deleted", execAll(`DELETE FROM audit_records WHERE seq = 4`), 4},
		{"the first row deleted", execAll(`DELETE FROM audit_records WHERE seq = 1`), 1},
		{"bodies and hashes of two rows swapped", execAll(
			`CREATE TEMP TABLE t AS SELECT seq, body, hash FROM audit_records WHERE seq IN (2, 3)`,
			`UPDATE audit_records SET body = (SELECT body FROM t WHERE t.seq = 5 - audit_records.seq),
			                          hash = (SELECT hash FROM t WHERE t.seq = 5 - audit_records.seq) WHERE seq IN (2, 3)`), 2},
		{"two whole rows swapped", execAll(
			`CREATE TEMP TABLE t AS SELECT * FROM audit_records WHERE seq IN (6, 7)`,
			`DELETE FROM audit_records WHERE seq IN (6, 7)`,
			`INSERT INTO audit_records SELECT 13 - seq, id, time, tenant, agent, decision, kind, call_id, body, hash FROM t`), 6},
		{"a row copied to the end", execAll(
			`INSERT INTO audit_records SELECT 9, id, time, tenant, agent, decision, kind, call_id, body, hash FROM audit_records WHERE seq = 3`), 9},
		{"a body that no longer decodes", execAll(`UPDATE audit_records SET body = '{"seq":' WHERE seq = 5`), 5},
		// A clean shutdown signs the head of the chain (seq 8) with a key the
		// database does not hold: that is what gives away a cut tail, or a
		// chain rewritten and re-hashed from the change onwards.
		{"the tail cut off", execAll(`DELETE FROM audit_records WHERE seq = 8`), 8},
		{"the chain rewritten and re-hashed from a change on", func(db *sql.DB) error {
			return reforge(db, 3, func(r *audit.Record) { r.Reason = "purging is fine" })
		}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			copyDB := filepath.Join(t.TempDir(), "warden.db")
			orig := rawDB(t, db)
			if _, err := orig.Exec(`VACUUM INTO ?`, copyDB); err != nil {
				t.Fatal(err)
			}
			key, err := os.ReadFile(app.AuditKeyPath(db))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(app.AuditKeyPath(copyDB), key, 0o600); err != nil {
				t.Fatal(err)
			}
			tdb := rawDB(t, copyDB)
			for _, trig := range []string{"audit_records_append_only_update", "audit_records_append_only_delete"} {
				if _, err := tdb.Exec("DROP TRIGGER " + trig); err != nil {
					t.Fatal(err)
				}
			}
			if err := tt.tamper(tdb); err != nil {
				t.Fatalf("tampering: %v", err)
			}
			tdb.Close()
			code, out, errOut := verify(t, copyDB)
			want := fmt.Sprintf("FAIL: seq %d:", tt.wantSeq)
			if code != 1 || !strings.HasPrefix(out, want) {
				t.Errorf("verify: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, want)
			}
			t.Logf("verify: %s", strings.TrimSpace(out))
		})
	}
}

func execAll(stmts ...string) func(*sql.DB) error {
	return func(db *sql.DB) error {
		// One connection, so that temp tables are seen by the next statement.
		conn, err := db.Conn(context.Background())
		if err != nil {
			return err
		}
		defer conn.Close()
		for _, s := range stmts {
			if _, err := conn.ExecContext(context.Background(), s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	}
}

// reforge applies change to the record at seq and re-seals it and every
// record after it, as an attacker who understands the chain would: every
// row then checks out against the one before it.
func reforge(db *sql.DB, seq int64, change func(*audit.Record)) error {
	var prev string
	if err := db.QueryRow(`SELECT hash FROM audit_records WHERE seq = ?`, seq-1).Scan(&prev); err != nil {
		return err
	}
	rows, err := db.Query(`SELECT seq, body FROM audit_records WHERE seq >= ? ORDER BY seq`, seq)
	if err != nil {
		return err
	}
	type row struct {
		seq  int64
		body string
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.body); err != nil {
			rows.Close()
			return err
		}
		rs = append(rs, r)
	}
	rows.Close()
	for _, r := range rs {
		var rec audit.Record
		if err := json.Unmarshal([]byte(r.body), &rec); err != nil {
			return err
		}
		if r.seq == seq {
			change(&rec)
		}
		body, err := rec.SealCanonical(prev, r.seq)
		if err != nil {
			return err
		}
		if _, err := db.Exec(`UPDATE audit_records SET body = ?, hash = ? WHERE seq = ?`, string(body), rec.Hash, r.seq); err != nil {
			return err
		}
		prev = rec.Hash
	}
	return nil
}

func mustHash(db *sql.DB, seq int) string {
	var h string
	_ = db.QueryRow(`SELECT hash FROM audit_records WHERE seq = ?`, seq).Scan(&h)
	return h
}

// proc is `warden serve` running as its own process.
type proc struct {
	cmd    *exec.Cmd
	url    string
	log    *lineLog
	exited chan struct{} // closed once the process is reaped; err is then set
	err    error
}

// lineLog collects a process's stderr and notices the line saying where
// warden listens.
type lineLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	part  []byte
	ready chan string
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		var line struct{ Msg, Addr string }
		if json.Unmarshal(l.part[:i], &line) == nil && line.Msg == "warden serving" {
			select {
			case l.ready <- line.Addr:
			default:
			}
		}
		l.part = l.part[i+1:]
	}
	return len(p), nil
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func wardenCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), execEnv+"=1")
	return cmd
}

// startProcess runs `warden serve` on a free port and waits until it serves.
func startProcess(t *testing.T, cfgDir, db string) *proc {
	t.Helper()
	p := &proc{log: &lineLog{ready: make(chan string, 1)}, exited: make(chan struct{})}
	p.cmd = wardenCmd("serve", "--config", cfgDir, "--db", db, "--addr", "127.0.0.1:0", "--log-format", "json", "--grace", "10s")
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if strings.Contains(p.log.String(), "DATA RACE") {
			t.Errorf("the warden process reported a data race:\n%s", p.log)
		}
	})
	select {
	case addr := <-p.log.ready:
		p.url = "http://" + addr
	case <-p.exited:
		t.Fatalf("warden serve exited before serving (%v):\n%s", p.err, p.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("warden serve did not start within 20s:\n%s", p.log)
	}
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(within):
		t.Fatalf("warden serve did not exit within %v:\n%s", within, p.log)
	}
	return p.cmd.ProcessState.ExitCode()
}

// runWarden runs one warden command as a process.
func runWarden(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := wardenCmd(args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("warden %s did not finish within 30s", strings.Join(args, " "))
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// waitRefusing polls until nothing accepts connections at url's address:
// the server has stopped listening.
func waitRefusing(t *testing.T, url string) {
	t.Helper()
	addr := strings.TrimPrefix(url, "http://")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections", addr)
		}
		time.Sleep(10 * time.Millisecond) // polling: a closed listener sends no event
	}
}

// TestKill9DuringLoad is the crash-safety test: kill -9 under concurrent
// load, restart on the same database, and check the write-ahead promise.
func TestKill9DuringLoad(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	cfgDir, db := setup(t, up)
	srv := startProcess(t, cfgDir, db)

	code, out, errOut := runWarden(t, "agents", "token", "create", "bot", "--db", db)
	token := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(token, "wdn_") {
		t.Fatalf("warden agents token create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	const (
		workers = 32
		enough  = 200 // successful calls before the kill
	)
	var (
		mu      sync.Mutex
		okIDs   []string
		killed  atomic.Bool
		succ    atomic.Int64
		reached = make(chan struct{})
		once    sync.Once
		wg      sync.WaitGroup
	)
	ctx, stopLoad := context.WithCancel(context.Background())
	defer wg.Wait() // no worker may outlive the test, even one that fails early
	defer stopLoad()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	for g := range workers {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				key := fmt.Sprintf("k%d-%d", g, n)
				action, args, want := "get", map[string]any{"id": key}, 200
				switch n % 4 {
				case 2:
					action, args = "create", map[string]any{"tag": key, "size": 1}
				case 3:
					action, args, want = "purge", map[string]any{"tag": key}, 403
				}
				r, err := postCall(ctx, hc, srv.url, token, action, args)
				if err != nil {
					if !killed.Load() {
						t.Errorf("%s %s before the kill: %v", action, key, err)
					}
					return
				}
				if r.HTTP != want {
					t.Errorf("%s %s: %d %s, want %d", action, key, r.HTTP, r.raw, want)
					return
				}
				if r.HTTP == 200 {
					if r.Status != "succeeded" {
						t.Errorf("%s %s: status %q, want succeeded: %s", action, key, r.Status, r.raw)
					}
					mu.Lock()
					okIDs = append(okIDs, r.ID)
					mu.Unlock()
					if succ.Add(1) >= enough {
						once.Do(func() { close(reached) })
					}
				}
			}
		})
	}
	select {
	case <-reached:
	case <-srv.exited:
		t.Fatalf("warden exited under load (%v):\n%s", srv.err, srv.log)
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d successful calls in 60s", succ.Load())
	}
	killed.Store(true)
	if err := srv.cmd.Process.Kill(); err != nil { // SIGKILL, mid-load
		t.Fatal(err)
	}
	<-srv.exited
	stopLoad()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	upstreamSaw := up.snapshot()

	// Restart on the same database: it must open and serve.
	srv2 := startProcess(t, cfgDir, db)
	after := mustCall(t, srv2.url, token, "get", map[string]any{"id": "after-restart"})
	if after.HTTP != 200 || after.Status != "succeeded" {
		t.Fatalf("call after the restart = %d %s", after.HTTP, after.raw)
	}

	st := openStore(t, db)
	decisions := map[string]*audit.Record{}
	outcomes := map[string]*audit.Record{}
	allowedKeys := map[string]bool{}
	var allowed int
	err := st.AuditAll(context.Background(), func(r *audit.Record) error {
		switch r.Kind {
		case audit.KindDecision:
			if decisions[r.CallID] != nil {
				t.Errorf("call %s has two decision records", r.CallID)
			}
			decisions[r.CallID] = r
			if r.Decision == string(call.Allow) || r.Decision == string(call.AllowWithConstraints) {
				allowed++
				var args struct{ ID, Tag string }
				if err := json.Unmarshal(r.Args, &args); err != nil {
					return err
				}
				allowedKeys[args.ID+args.Tag] = true
			}
		case audit.KindOutcome:
			d := decisions[r.CallID]
			if d == nil {
				t.Errorf("outcome record %d for call %s has no decision record before it", r.Seq, r.CallID)
			}
			if outcomes[r.CallID] != nil {
				t.Errorf("call %s has two outcome records", r.CallID)
			}
			outcomes[r.CallID] = r
		default:
			t.Errorf("unexpected record kind %q at seq %d", r.Kind, r.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Every call that got a 200 has its decision and its outcome.
	for _, id := range okIDs {
		d, o := decisions[id], outcomes[id]
		switch {
		case d == nil:
			t.Errorf("call %s got a 200 but has no decision record", id)
		case o == nil:
			t.Errorf("call %s got a 200 but has no outcome record", id)
		case o.Outcome != "succeeded" || o.Seq < d.Seq:
			t.Errorf("call %s: outcome record %d (%s) after decision %d", id, o.Seq, o.Outcome, d.Seq)
		}
	}
	// Nothing ran without a decision record, and nothing ran twice.
	var reqs int
	for key, n := range upstreamSaw {
		reqs += n
		if !allowedKeys[key] {
			t.Errorf("the upstream got a request for %s, which has no ALLOW decision record", key)
		}
		if n != 1 {
			t.Errorf("the upstream got %d requests for %s", n, key)
		}
	}
	if reqs > allowed {
		t.Errorf("the upstream got %d requests but only %d calls were allowed", reqs, allowed)
	}
	// At most one call per worker was cut short between its two records.
	interrupted := 0
	for id, d := range decisions {
		if d.Outcome == "" && outcomes[id] == nil {
			interrupted++
		}
	}
	if interrupted > workers {
		t.Errorf("%d allowed calls have no outcome; at most %d were in flight", interrupted, workers)
	}
	t.Logf("%d calls got a 200 before the kill; %d decision records, %d outcome records, %d upstream requests, %d calls interrupted",
		len(okIDs), len(decisions), len(outcomes), reqs, interrupted)

	// SIGTERM with a call in flight: the call finishes, the process exits 0.
	slow := make(chan callResult, 1)
	go func() {
		r, err := postCall(context.Background(), http.DefaultClient, srv2.url, token, "slow", map[string]any{"id": "slow-1"})
		if err != nil {
			r.raw = err.Error()
		}
		slow <- r
	}()
	select {
	case <-up.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow call never reached the upstream")
	}
	if err := srv2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitRefusing(t, srv2.url)
	select {
	case <-srv2.exited:
		t.Fatalf("warden exited with a call in flight:\n%s", srv2.log)
	default:
	}
	up.Release()
	if r := <-slow; r.HTTP != 200 || r.Status != "succeeded" {
		t.Errorf("the in-flight call during shutdown = %d %s, want 200 succeeded", r.HTTP, r.raw)
	} else if recs, err := st.AuditRecords(context.Background(), sqlite.AuditFilter{CallID: r.ID}); err != nil || len(recs) != 2 || recs[1].Kind != audit.KindOutcome {
		t.Errorf("the in-flight call's records = %v (%v), want its decision and outcome", recs, err)
	}
	if code := srv2.wait(t, 15*time.Second); code != 0 {
		t.Errorf("warden serve exited %d after SIGTERM, want 0:\n%s", code, srv2.log)
	}

	code, out, errOut = runWarden(t, "audit", "verify", "--db", db)
	if code != 0 || !verifyOK.MatchString(out) {
		t.Errorf("warden audit verify: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	cfgDir, db := setup(t, up)
	srv := runInProcess(t, cfgDir, db)
	st := openStore(t, db)
	tok := agentToken(t, st)

	slow := make(chan callResult, 1)
	go func() {
		r, err := postCall(context.Background(), http.DefaultClient, srv.URL, tok, "slow", map[string]any{"id": "s1"})
		if err != nil {
			r.raw = err.Error()
		}
		slow <- r
	}()
	select {
	case <-up.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow call never reached the upstream")
	}
	srv.Cancel()
	waitRefusing(t, srv.URL) // no new calls are accepted...
	select {
	case <-srv.Done(): // ...but Run waits for the one in flight
		t.Fatalf("app.Run returned (%v) with a call in flight", srv.Err())
	default:
	}
	up.Release()
	r := <-slow
	if r.HTTP != 200 || r.Status != "succeeded" {
		t.Fatalf("the in-flight call = %d %s, want 200 succeeded", r.HTTP, r.raw)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("app.Run = %v, want nil", err)
	}
	recs, err := st.AuditRecords(context.Background(), sqlite.AuditFilter{CallID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Kind != audit.KindDecision || recs[1].Kind != audit.KindOutcome || recs[1].Outcome != "succeeded" {
		t.Errorf("records of the in-flight call = %+v, want its decision and a succeeded outcome", recs)
	}
}

// TestShutdownEndsLongPolls: a client waiting on a call that waits for a
// human is not work in flight. Shutdown answers it at once with the call's
// current state instead of holding the process for the whole grace period.
func TestShutdownEndsLongPolls(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	cfgDir, db := setup(t, up)
	srv := runInProcess(t, cfgDir, db) // grace 10s, approval timeout 15m
	st := openStore(t, db)
	tok := agentToken(t, st)

	waited := make(chan callResult, 1)
	go func() {
		hc := &http.Client{Timeout: 30 * time.Second}
		b := `{"connector":"up","action":"pay","args":{"id":"p1"},"wait":"20s"}`
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/calls", strings.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		var r callResult
		resp, err := hc.Do(req)
		if err != nil {
			r.raw = err.Error()
			waited <- r
			return
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		r.HTTP, r.raw = resp.StatusCode, string(data)
		_ = json.Unmarshal(data, &r)
		waited <- r
	}()
	// Once its decision is recorded, the call is waiting (there is no event
	// to wait on for that, so poll the store).
	for deadline := time.Now().Add(10 * time.Second); ; {
		recs, err := st.AuditRecords(context.Background(), sqlite.AuditFilter{Decision: "REQUIRE_APPROVAL"})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the call never recorded its decision")
		}
		time.Sleep(10 * time.Millisecond)
	}

	start := time.Now()
	if err := srv.Stop(); err != nil {
		t.Errorf("app.Run = %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v with a client waiting for approval: it waited out the grace period", took)
	}
	r := <-waited
	if r.HTTP != http.StatusAccepted || r.Status != "pending" || r.ID == "" {
		t.Errorf("the waiting call got %d %s, want 202 pending", r.HTTP, r.raw)
	}
}

// TestFailClosed breaks the store under a running server in real ways and
// checks that a call whose decision cannot be recorded never runs, and that
// the server recovers once the store does.
func TestFailClosed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		long     bool                                  // takes the store's busy timeout (5s)
		sabotage func(t *testing.T, db *sql.DB) func() // returns the repair
		wantCode string
		wantRuns int      // upstream requests the failed call makes
		wantRecs []string // audit kinds the failed call leaves
	}{
		{
			name: "audit insert fails",
			sabotage: func(t *testing.T, db *sql.DB) func() {
				mustExec(t, db, `CREATE TRIGGER sabotage BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'disk says no'); END`)
				return func() { mustExec(t, db, `DROP TRIGGER sabotage`) }
			},
			wantCode: "audit_unavailable",
		},
		{
			name: "call state cannot be saved",
			sabotage: func(t *testing.T, db *sql.DB) func() {
				mustExec(t, db, `CREATE TRIGGER sabotage BEFORE INSERT ON calls BEGIN SELECT RAISE(ABORT, 'no'); END`)
				return func() { mustExec(t, db, `DROP TRIGGER sabotage`) }
			},
			wantCode: "audit_unavailable",
		},
		{
			name: "kill switch unreadable",
			sabotage: func(t *testing.T, db *sql.DB) func() {
				mustExec(t, db, `ALTER TABLE kills RENAME TO kills_gone`)
				return func() { mustExec(t, db, `ALTER TABLE kills_gone RENAME TO kills`) }
			},
			wantCode: "unavailable",
		},
		{
			name: "outcome cannot be recorded",
			sabotage: func(t *testing.T, db *sql.DB) func() {
				mustExec(t, db, `CREATE TRIGGER sabotage BEFORE INSERT ON audit_records WHEN NEW.kind = 'outcome' BEGIN SELECT RAISE(ABORT, 'no'); END`)
				return func() { mustExec(t, db, `DROP TRIGGER sabotage`) }
			},
			// The decision was recorded, so the call ran; the agent must
			// still not take it for a success.
			wantCode: "audit_unavailable", wantRuns: 1, wantRecs: []string{audit.KindDecision},
		},
		{
			name: "write lock held past the busy timeout",
			long: true,
			sabotage: func(t *testing.T, db *sql.DB) func() {
				conn, err := db.Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
					t.Fatal(err)
				}
				return func() {
					if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
						t.Error(err)
					}
					conn.Close()
				}
			},
			wantCode: "audit_unavailable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.long && testing.Short() {
				t.Skip("waits out the store's 5s busy timeout")
			}
			up := newUpstream(t)
			cfgDir, db := setup(t, up)
			srv := runInProcess(t, cfgDir, db)
			st := openStore(t, db)
			tok := agentToken(t, st)

			repair := tt.sabotage(t, rawDB(t, db))
			r := mustCall(t, srv.URL, tok, "get", map[string]any{"id": "f1"})
			repair()
			if r.HTTP != http.StatusServiceUnavailable || r.Error.Code != tt.wantCode || r.Error.Message == "" || r.Error.ID == "" {
				t.Errorf("call = %d %s, want 503 %s with a message and an error id", r.HTTP, r.raw, tt.wantCode)
			}
			if strings.Contains(r.raw, "disk says no") || strings.Contains(r.raw, "sqlite") {
				t.Errorf("the 503 leaks the cause: %s", r.raw)
			}
			if n := up.total(); n != tt.wantRuns {
				t.Errorf("the upstream was called %d times, want %d", n, tt.wantRuns)
			}
			recs, err := st.AuditRecords(context.Background(), sqlite.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, rec := range recs {
				got = append(got, rec.Kind)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantRecs, ",") {
				t.Errorf("audit kinds after the failure = %q, want %q", got, tt.wantRecs)
			}

			// Repaired, the same server works again and the chain is whole.
			if r := mustCall(t, srv.URL, tok, "get", map[string]any{"id": "f2"}); r.HTTP != 200 || r.Status != "succeeded" {
				t.Errorf("call after the repair = %d %s, want 200", r.HTTP, r.raw)
			}
			if code, out, errOut := verify(t, db); code != 0 {
				t.Errorf("verify after the repair: exit %d %q %q", code, out, errOut)
			}
		})
	}
}

func mustExec(t *testing.T, db *sql.DB, stmt string) {
	t.Helper()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}
