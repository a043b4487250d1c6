// Command load is warden's whole-system load harness. It starts an echo
// upstream and a warden gateway (SQLite on disk, durable audit), then calls
// the upstream directly and through warden, at a fixed open-loop rate and at
// saturation, and prints the latency warden adds and the throughput ratio.
// It ends with the audit append benchmark (group commit vs one transaction
// per record). See bench/README.md.
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
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-dev/warden/bench/auditbench"
	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/call"
)

func main() {
	rate := flag.Int("rate", 1000, "open-loop requests per second")
	duration := flag.Duration("duration", 10*time.Second, "length of each open-loop run")
	satDuration := flag.Duration("saturate", 5*time.Second, "length of each saturation run")
	workers := flag.Int("workers", 64, "concurrent clients at saturation")
	dir := flag.String("dir", "", "where the database goes (default: a temp dir on the same disk as /tmp)")
	auditBench := flag.Bool("audit", true, "also run the audit append benchmark")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*rate, *duration, *satDuration, *workers, *dir, *auditBench); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

const configTemplate = `kind: agent
name: bench
permissions:
  echo: {ping: on}
---
kind: connector
name: echo
type: http
base_url: %s
actions:
  ping:
    type: write
    method: POST
    path: /echo
    body: "{args}"
    input_schema: {type: object, properties: {n: {type: integer}, msg: {type: string}}, required: [n]}
---
kind: policy
name: bench
rules:
  - {name: prod-writes, match: {environment: production, action_type: write}, decision: REQUIRE_APPROVAL}
  - {name: big, match: {connector: echo, action: ping}, when: 'args.n > 1000000000', decision: REQUIRE_APPROVAL}
  - {name: limits, match: {connector: echo, action: ping}, decision: ALLOW_WITH_CONSTRAINTS, constraints: {args.msg: {max_length: 64}}}
  - {name: no-drop, match: {action: drop}, decision: DENY}
`

func run(rate int, duration, satDuration time.Duration, workers int, dir string, auditBench bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if dir == "" {
		d, err := os.MkdirTemp("", "warden-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}

	// The upstream: echoes the JSON body back.
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"echo":%s}`, b)
	})}
	go up.Serve(upLn)
	defer up.Close()
	upURL := "http://" + upLn.Addr().String()

	cfgDir := filepath.Join(dir, "config")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "bench.yaml"), []byte(fmt.Sprintf(configTemplate, upURL)), 0o644); err != nil {
		return err
	}
	db := filepath.Join(dir, "warden.db")
	st, err := app.OpenStore(ctx, db, nil, nil)
	if err != nil {
		return err
	}
	token, _, err := st.CreateToken(ctx, call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "bench"})
	st.Close()
	if err != nil {
		return err
	}
	ready := make(chan string, 1)
	runErr := make(chan error, 1)
	go func() {
		runErr <- app.Run(ctx, app.Options{ConfigDir: cfgDir, DB: db, Addr: "127.0.0.1:0", Ready: ready,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	}()
	var wardenAddr string
	select {
	case wardenAddr = <-ready:
	case err := <-runErr:
		return fmt.Errorf("warden did not start: %v", err)
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}}
	body := []byte(`{"n":1,"msg":"hello"}`)
	direct := func() error { return post(client, upURL+"/echo", "", body) }
	callBody := []byte(`{"connector":"echo","action":"ping","args":{"n":1,"msg":"hello"}}`)
	through := func() error { return post(client, "http://"+wardenAddr+"/v1/calls", token, callBody) }

	// Warm up connections and caches.
	for range 200 {
		if err := direct(); err != nil {
			return fmt.Errorf("direct warm-up: %w", err)
		}
		if err := through(); err != nil {
			return fmt.Errorf("warden warm-up: %w", err)
		}
	}

	fmt.Printf("warden load harness: %d cores, database %s (durable audit: WAL, synchronous=FULL)\n\n", numCPU(), db)
	fmt.Printf("open loop at %d rps for %s each\n", rate, duration)
	d := openLoop(direct, rate, duration)
	t := openLoop(through, rate, duration)
	fmt.Printf("  %-8s  %9s  %9s  %9s  %7s\n", "", "p50", "p90", "p99", "errors")
	d.print("direct")
	t.print("warden")
	fmt.Printf("  added latency: p50 %s, p99 %s\n\n", round(t.p(50)-d.p(50)), round(t.p(99)-d.p(99)))

	fmt.Printf("saturation: %d workers for %s each\n", workers, satDuration)
	dn, derr := saturate(direct, workers, satDuration)
	tn, terr := saturate(through, workers, satDuration)
	dr, tr := float64(dn)/satDuration.Seconds(), float64(tn)/satDuration.Seconds()
	fmt.Printf("  direct  %8.0f req/s (%d errors)\n  warden  %8.0f req/s (%d errors)\n  ratio through/direct %.3f\n\n", dr, derr, tr, terr, tr/dr)

	cancel()
	if err := <-runErr; err != nil {
		return err
	}
	if auditBench {
		fmt.Println("audit appends (durable), group commit vs one transaction per record:")
		if err := auditbench.Run(context.Background(), dir, os.Stdout); err != nil {
			return err
		}
	}
	return nil
}

func post(c *http.Client, url, token string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if token != "" {
		var r struct{ Status string }
		if json.Unmarshal(b, &r) != nil || r.Status != "succeeded" {
			return fmt.Errorf("call did not succeed: %s", b)
		}
	}
	return nil
}

type latencies struct {
	ds     []time.Duration
	errors int64
}

func (l *latencies) p(q float64) time.Duration {
	if len(l.ds) == 0 {
		return 0
	}
	i := int(float64(len(l.ds)-1) * q / 100)
	return l.ds[i]
}

func (l *latencies) print(name string) {
	fmt.Printf("  %-8s  %9s  %9s  %9s  %7d\n", name, round(l.p(50)), round(l.p(90)), round(l.p(99)), l.errors)
}

// openLoop sends at a fixed rate whatever the responses do, and measures
// each request from the moment it was due, so that a stall shows up as
// latency rather than as fewer requests (no coordinated omission).
func openLoop(f func() error, rate int, d time.Duration) *latencies {
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	res := make([]time.Duration, n)
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs.Add(1)
			}
			res[i] = time.Since(due)
		}()
	}
	wg.Wait()
	slices.Sort(res)
	return &latencies{ds: res, errors: errs.Load()}
}

// saturate runs workers closed-loop clients for d and counts completions.
func saturate(f func() error, workers int, d time.Duration) (ok, failed int64) {
	var okN, errN atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if f() != nil {
					errN.Add(1)
				} else {
					okN.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return okN.Load(), errN.Load()
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
