// Command approvals measures approval propagation: the time from a human's
// approve request to the waiting call executing (the upstream receiving
// it), and to the agent's long poll returning the result. It runs warden
// in-process (app.Run, SQLite on disk, durable audit) with an `ask` action
// on an http connector; for each of -n approvals an agent makes the call
// (202 pending), long-polls GET /v1/calls/{id}?wait=30s, and an approver
// approves through the API (POST /v1/approvals/{id}/approve) or the CLI
// (`warden approvals approve`, in-process, a second connection pool on the
// same file: the server picks the call up in its 250 ms sweep). See
// bench/README.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/cli"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

func main() {
	n := flag.Int("n", 200, "approvals per channel")
	channels := flag.String("channels", "api,cli", "comma-separated: api, cli")
	dir := flag.String("dir", "", "where the database goes (default: a temp dir)")
	flag.Parse()
	if err := run(*n, strings.Split(*channels, ","), *dir); err != nil {
		fmt.Fprintln(os.Stderr, "approvals:", err)
		os.Exit(1)
	}
}

const configTemplate = `kind: agent
name: bot
permissions:
  up: {act: ask}
---
kind: connector
name: up
type: http
base_url: %s
actions:
  act: {type: write, method: POST, path: "/act/{args.i}", body: "{args}"}
`

// upstream records when each path was first hit.
type upstream struct {
	mu   sync.Mutex
	hits map[string]time.Time
	seen map[string]chan struct{}
}

func (u *upstream) wait(path string) chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	ch, ok := u.seen[path]
	if !ok {
		ch = make(chan struct{})
		u.seen[path] = ch
	}
	return ch
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	u.mu.Lock()
	if _, ok := u.hits[r.URL.Path]; !ok {
		u.hits[r.URL.Path] = now
		ch, ok := u.seen[r.URL.Path]
		if !ok {
			ch = make(chan struct{})
			u.seen[r.URL.Path] = ch
		}
		close(ch)
	}
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

func run(n int, channels []string, dir string) error {
	up := &upstream{hits: map[string]time.Time{}, seen: map[string]chan struct{}{}}
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	usrv := &http.Server{Handler: up, ReadHeaderTimeout: 10 * time.Second}
	go usrv.Serve(uln)
	defer usrv.Close()

	if dir == "" {
		if dir, err = os.MkdirTemp("", "warden-approvals-bench"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	cfgDir := filepath.Join(dir, "warden.d")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "c.yaml"), fmt.Appendf(nil, configTemplate, "http://"+uln.Addr().String()), 0o644); err != nil {
		return err
	}
	db := filepath.Join(dir, "warden.db")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{ConfigDir: cfgDir, DB: db, Addr: "127.0.0.1:0", Ready: ready, ApprovalTimeout: time.Hour})
	}()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		cancel()
		return err
	}
	defer func() {
		cancel()
		<-done
	}()

	st, err := sqlite.Open(ctx, db, nil)
	if err != nil {
		return err
	}
	agentTok, _, err := st.CreateToken(ctx, call.Principal{Role: call.RoleAgent, Tenant: "default", Agent: "bot"})
	if err != nil {
		return err
	}
	aprTok, _, err := st.CreateApproverToken(ctx, call.Principal{Role: call.RoleApprover, Tenant: "default", Name: "alice"}, approval.Scope{})
	if err != nil {
		return err
	}
	st.Close()

	fmt.Printf("approval propagation: %d approvals per channel, SQLite at %s\n\n", n, db)
	fmt.Printf("%-8s %-28s %10s %10s %10s\n", "channel", "from approve request to", "p50", "p99", "max")
	for i, ch := range channels {
		toUp, toAgent, err := measure(ctx, base, agentTok, aprTok, db, up, strings.TrimSpace(ch), n, i*n)
		if err != nil {
			return fmt.Errorf("%s: %w", ch, err)
		}
		fmt.Printf("%-8s %-28s %10s %10s %10s\n", ch, "upstream receives the call", pct(toUp, 50), pct(toUp, 99), pct(toUp, 100))
		fmt.Printf("%-8s %-28s %10s %10s %10s\n", ch, "agent's long poll returns", pct(toAgent, 50), pct(toAgent, 99), pct(toAgent, 100))
	}
	return nil
}

func measure(ctx context.Context, base, agentTok, aprTok, db string, up *upstream, channel string, n, offset int) (toUp, toAgent []time.Duration, err error) {
	hc := &http.Client{Timeout: 60 * time.Second}
	for i := offset; i < offset+n; i++ {
		var c struct {
			ID         string `json:"id"`
			Status     string `json:"status"`
			ApprovalID string `json:"approval_id"`
		}
		if code, err := do(hc, "POST", base+"/v1/calls", agentTok, map[string]any{"connector": "up", "action": "act", "args": map[string]any{"i": i}}, &c); err != nil || code != http.StatusAccepted {
			return nil, nil, fmt.Errorf("call %d: %d %v", i, code, err)
		}
		// The agent long-polls, as an agent would.
		polled := make(chan time.Time, 1)
		pollErr := make(chan error, 1)
		go func() {
			for {
				var s struct {
					Status string `json:"status"`
				}
				if _, err := do(hc, "GET", base+"/v1/calls/"+c.ID+"?wait=30s", agentTok, nil, &s); err != nil {
					pollErr <- err
					return
				}
				if s.Status != "pending" && s.Status != "approved" && s.Status != "running" {
					polled <- time.Now()
					return
				}
			}
		}()
		time.Sleep(2 * time.Millisecond) // let the poll reach the server and park
		if channel == "cli" {
			// The server sweeps every 250 ms; approving right after the
			// previous call ran would always land just after a sweep.
			// Approve at a random phase instead.
			time.Sleep(rand.N(250 * time.Millisecond))
		}
		hit := up.wait(fmt.Sprintf("/act/%d", i))
		start := time.Now()
		switch channel {
		case "api":
			if code, err := do(hc, "POST", base+"/v1/approvals/"+c.ApprovalID+"/approve", aprTok, map[string]any{}, nil); err != nil || code != http.StatusOK {
				return nil, nil, fmt.Errorf("approve %d: %d %v", i, code, err)
			}
		case "cli":
			var out, errb bytes.Buffer
			if code := cli.Run(ctx, []string{"approvals", "approve", c.ApprovalID, "--db", db, "--token", aprTok, "--wait", "0"}, strings.NewReader(""), &out, &errb); code != 0 {
				return nil, nil, fmt.Errorf("cli approve %d: exit %d: %s", i, code, errb.String())
			}
		default:
			return nil, nil, fmt.Errorf("unknown channel %q", channel)
		}
		select {
		case <-hit:
		case <-time.After(30 * time.Second):
			return nil, nil, fmt.Errorf("call %d never reached the upstream", i)
		}
		up.mu.Lock()
		t := up.hits[fmt.Sprintf("/act/%d", i)]
		up.mu.Unlock()
		toUp = append(toUp, t.Sub(start))
		select {
		case at := <-polled:
			toAgent = append(toAgent, at.Sub(start))
		case err := <-pollErr:
			return nil, nil, fmt.Errorf("poll %d: %w", i, err)
		case <-time.After(30 * time.Second):
			return nil, nil, fmt.Errorf("poll %d never returned", i)
		}
	}
	return toUp, toAgent, nil
}

func do(hc *http.Client, method, url, token string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, nil
}

func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	i = min(max(i-1, 0), len(s)-1)
	return s[i].Round(10 * time.Microsecond).String()
}
