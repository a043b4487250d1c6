// Command replicas measures warden scaled out on PostgreSQL: calls per
// second through 1, 2 and 3 replicas (app.Run in-process, each on its own
// port) on one database with durable audit (synchronous_commit=on, fsync
// on), in the same run; and approval propagation across replicas: an
// agent's call waits on replica A, an approver approves on replica B, and
// the time from the approve request to A's long poll returning the result
// (p50/p99). It starts a throwaway PostgreSQL cluster (the server binaries
// of pgtest.DefaultBinDir, or WARDEN_PG_BIN), or uses -pg.
//
//	go run ./bench/replicas [-d 5s] [-c 32] [-n 100] [-pg postgres://…]
//
// See bench/README.md and docs/scale-out.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/store/postgres"
	"github.com/warden-dev/warden/internal/store/postgres/pgtest"
)

func main() {
	d := flag.Duration("d", 5*time.Second, "load duration per replica count")
	c := flag.Int("c", 32, "concurrent clients")
	n := flag.Int("n", 100, "approvals for the propagation measurement")
	pg := flag.String("pg", os.Getenv(pgtest.EnvURL), "a PostgreSQL URL allowed to CREATE DATABASE (default: start a throwaway cluster)")
	flag.Parse()
	if err := run(*d, *c, *n, *pg); err != nil {
		fmt.Fprintln(os.Stderr, "replicas:", err)
		os.Exit(1)
	}
}

const configTemplate = `kind: agent
name: bot
permissions:
  up: {act: on, wait: ask}
---
kind: connector
name: up
type: http
base_url: %s
actions:
  act:  {type: write, method: POST, path: "/act/{args.i}", body: "{args}"}
  wait: {type: write, method: POST, path: "/wait/{args.i}", body: "{args}"}
`

func run(d time.Duration, clients, approvals int, pgURL string) error {
	var cl *pgtest.Cluster
	if pgURL != "" {
		cl = pgtest.Attach(pgURL)
	} else {
		var err error
		if cl, err = pgtest.Start(pgtest.Options{Durable: true}); err != nil {
			return err
		}
		defer cl.Stop()
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	dir, err := os.MkdirTemp("", "warden-bench-replicas-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfgDir := filepath.Join(dir, "warden.d")
	if err := os.Mkdir(cfgDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "c.yaml"), fmt.Appendf(nil, configTemplate, up.URL), 0o644); err != nil {
		return err
	}
	key := filepath.Join(dir, "audit.key")
	if _, err := audit.LoadOrCreateKey(key); err != nil {
		return err
	}

	fmt.Printf("warden replicas on one PostgreSQL (durable audit: synchronous_commit=on, fsync=on); %d clients, %v per run\n\n", clients, d)
	fmt.Printf("%-9s %10s %10s %10s %8s\n", "replicas", "calls", "calls/s", "p50", "p99")
	for n := 1; n <= 3; n++ {
		res, err := throughput(cl, fmt.Sprintf("warden_bench_%d_%d", os.Getpid(), n), cfgDir, key, n, clients, d)
		if err != nil {
			return err
		}
		fmt.Printf("%-9d %10d %10.0f %10v %8v\n", n, res.calls, float64(res.calls)/d.Seconds(), res.p50.Round(100*time.Microsecond), res.p99.Round(100*time.Microsecond))
	}
	fmt.Println()
	return propagation(cl, fmt.Sprintf("warden_bench_%d_apr", os.Getpid()), cfgDir, key, approvals)
}

type result struct {
	calls    int
	p50, p99 time.Duration
}

// replicas starts n replicas on db and returns their base URLs, an agent
// token, an approver token and a stop function.
func replicas(db, cfgDir, key string, n int) (urls []string, agent, approver string, stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stop = func() { cancel(); wg.Wait() }
	for range n {
		ready := make(chan string, 1)
		done := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			done <- app.Run(ctx, app.Options{ConfigDir: cfgDir, DB: db, AuditKey: key, Addr: "127.0.0.1:0", Ready: ready,
				ConfigPoll: -1, Logger: slog.New(slog.DiscardHandler)})
		}()
		select {
		case addr := <-ready:
			urls = append(urls, "http://"+addr)
		case err := <-done:
			stop()
			return nil, "", "", nil, err
		}
	}
	st, err := postgres.Open(ctx, db, nil)
	if err != nil {
		stop()
		return nil, "", "", nil, err
	}
	defer st.Close()
	if agent, _, err = st.CreateToken(ctx, call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "bot"}); err == nil {
		approver, _, err = st.CreateApproverToken(ctx, call.Principal{Role: call.RoleApprover, Name: "alice"}, approval.Scope{})
	}
	if err != nil {
		stop()
		return nil, "", "", nil, err
	}
	return urls, agent, approver, stop, nil
}

var client = &http.Client{Transport: &http.Transport{
	MaxIdleConnsPerHost: 256,
	DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
}}

func post(url, token string, body any) (int, map[string]any, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	return send(req)
}

func send(req *http.Request) (int, map[string]any, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, nil
}

func throughput(cl *pgtest.Cluster, name, cfgDir, key string, n, clients int, d time.Duration) (result, error) {
	ctx := context.Background()
	db, err := cl.CreateDatabase(ctx, name)
	if err != nil {
		return result{}, err
	}
	defer cl.DropDatabase(ctx, name) //nolint:errcheck // best effort
	urls, agent, _, stop, err := replicas(db, cfgDir, key, n)
	if err != nil {
		return result{}, err
	}
	defer stop()
	var (
		mu    sync.Mutex
		lats  []time.Duration
		fails atomic.Int64
		seq   atomic.Int64
		wg    sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				i := seq.Add(1)
				start := time.Now()
				code, m, err := post(urls[w%len(urls)]+"/v1/calls", agent, map[string]any{"connector": "up", "action": "act", "args": map[string]any{"i": i}})
				if err != nil || code != http.StatusOK || m["status"] != "succeeded" {
					fails.Add(1)
					continue
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if f := fails.Load(); f > 0 {
		return result{}, fmt.Errorf("%d replicas: %d calls failed", n, f)
	}
	slices.Sort(lats)
	return result{calls: len(lats), p50: pct(lats, 0.50), p99: pct(lats, 0.99)}, nil
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[min(int(float64(len(l))*p), len(l)-1)]
}

// propagation: a call waits on replica A, the approval is given on B.
func propagation(cl *pgtest.Cluster, name, cfgDir, key string, n int) error {
	ctx := context.Background()
	db, err := cl.CreateDatabase(ctx, name)
	if err != nil {
		return err
	}
	defer cl.DropDatabase(ctx, name) //nolint:errcheck // best effort
	urls, agent, approver, stop, err := replicas(db, cfgDir, key, 3)
	if err != nil {
		return err
	}
	defer stop()
	a, b := urls[0], urls[1]
	var lats []time.Duration
	for i := range n {
		code, m, err := post(a+"/v1/calls", agent, map[string]any{"connector": "up", "action": "wait", "args": map[string]any{"i": i}})
		if err != nil || code != http.StatusAccepted {
			return fmt.Errorf("pending call: %d %v %v", code, m, err)
		}
		id, apr := m["id"].(string), m["approval_id"].(string)
		released := make(chan time.Time, 1)
		go func() {
			req, _ := http.NewRequest("GET", a+"/v1/calls/"+id+"?wait=30s", nil)
			req.Header.Set("Authorization", "Bearer "+agent)
			_, m, err := send(req)
			if err != nil || m["status"] != "succeeded" {
				fmt.Fprintf(os.Stderr, "replicas: wait on A: %v %v\n", m, err)
			}
			released <- time.Now()
		}()
		time.Sleep(20 * time.Millisecond) // A's long poll is waiting
		start := time.Now()
		if code, m, err := post(b+"/v1/approvals/"+apr+"/approve", approver, map[string]any{}); err != nil || code != http.StatusOK {
			return fmt.Errorf("approve on B: %d %v %v", code, m, err)
		}
		lats = append(lats, (<-released).Sub(start))
	}
	slices.Sort(lats)
	fmt.Printf("approval on B → call waiting on A released with its result (%d approvals): p50 %v  p99 %v  max %v\n",
		n, pct(lats, 0.5).Round(100*time.Microsecond), pct(lats, 0.99).Round(100*time.Microsecond), lats[len(lats)-1].Round(100*time.Microsecond))
	return nil
}
