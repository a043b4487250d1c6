// Command mcp measures what warden adds to an MCP tools/call: the same
// upstream MCP server (server-everything's echo, from e2e/node_modules) is
// called directly by the official Go SDK client over stdio, and through
// warden (app.Run in this process, the Go SDK client on /mcp over
// Streamable HTTP, warden's mcp connector to its own instance of the
// upstream over stdio), alternating call by call in the same run. It
// prints p50/p90/p99 of both and the added latency.
//
//	go run ./bench/mcp                      # database in a temp dir on disk (durable audit: 2 fsyncs per call)
//	go run ./bench/mcp -dir /dev/shm        # database on tmpfs: warden's overhead without fsync
//	go run ./bench/mcp -n 5000 -warmup 500
//
// Needs the pinned npm packages: make deps (npm ci in e2e/).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/call"
)

const config = `
kind: agent
name: bench
owner: bench@example.com
permissions:
  everything: {echo: on}
---
kind: connector
name: everything
type: mcp
command: %q
args: [stdio]
actions:
  echo: {type: read, input_schema: {type: object, properties: {message: {type: string}}, required: [message]}}
---
kind: policy
name: bench
rules:
  - name: echo-is-fine
    match: {connector: everything, action: echo, action_type: read}
    when: 'size(args.message) < 100'
    decision: ALLOW
`

func main() {
	n := flag.Int("n", 2000, "measured calls on each path")
	warmup := flag.Int("warmup", 200, "unmeasured calls on each path first")
	dir := flag.String("dir", "", "where the database goes (default: a temp dir under /tmp)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*n, *warmup, *dir); err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func run(n, warmup int, dir string) error {
	bin, err := filepath.Abs(filepath.Join("e2e", "node_modules", ".bin", "mcp-server-everything"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s is missing: run `make deps` (from the repository root)", bin)
	}
	tmp, err := os.MkdirTemp(dir, "warden-bench-mcp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cfgDir := filepath.Join(tmp, "warden.d")
	if err := os.Mkdir(cfgDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "c.yaml"), fmt.Appendf(nil, config, bin), 0o644); err != nil {
		return err
	}
	db := filepath.Join(tmp, "warden.db")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{ConfigDir: cfgDir, DB: db, Addr: "127.0.0.1:0", Ready: ready, ConfigSource: app.SourceFile, ConfigPoll: -1})
	}()
	var url string
	select {
	case addr := <-ready:
		url = "http://" + addr
	case err := <-done:
		return fmt.Errorf("app.Run: %w", err)
	}
	st, err := app.OpenStore(ctx, db, nil, nil)
	if err != nil {
		return err
	}
	tok, _, err := st.CreateToken(ctx, call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "bench"})
	st.Close()
	if err != nil {
		return err
	}

	client := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil)
	direct, err := client.Connect(ctx, &sdk.CommandTransport{Command: exec.Command(bin, "stdio")}, nil)
	if err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	defer direct.Close()
	hc := &http.Client{Transport: bearer{tok, &http.Transport{MaxIdleConnsPerHost: 4}}}
	through, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: url + "/mcp", HTTPClient: hc, MaxRetries: -1}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		return fmt.Errorf("through warden: %w", err)
	}
	defer through.Close()

	callOnce := func(s *sdk.ClientSession, name string) (time.Duration, error) {
		start := time.Now()
		res, err := s.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: map[string]any{"message": "hello"}})
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		if res.IsError {
			return 0, fmt.Errorf("%s: tool error: %+v", name, res.Content)
		}
		return d, nil
	}
	// The same call through warden's REST front end: the difference to
	// the MCP path is what the MCP front end itself costs.
	restBody := []byte(`{"connector":"everything","action":"echo","args":{"message":"hello"}}`)
	restOnce := func() (time.Duration, error) {
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/calls", bytes.NewReader(restBody))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("POST /v1/calls: %s", resp.Status)
		}
		return d, err
	}
	pingOnce := func(s *sdk.ClientSession) (time.Duration, error) {
		start := time.Now()
		err := s.Ping(ctx, nil)
		return time.Since(start), err
	}
	// The same tools/call as one raw JSON-RPC POST to /mcp (protocol
	// 2025-11-25, no SDK on the client side): warden's MCP server side
	// alone.
	rawBody := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"everything__echo","arguments":{"message":"hello"}}}`)
	rawOnce := func() (time.Duration, error) {
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, "POST", url+"/mcp", bytes.NewReader(rawBody))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err == nil && (resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("hello")) || bytes.Contains(b, []byte(`"isError":true`))) {
			err = fmt.Errorf("raw tools/call: %s %s", resp.Status, b)
		}
		return d, err
	}
	healthOnce := func() (time.Duration, error) {
		start := time.Now()
		resp, err := hc.Get(url + "/healthz")
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start), err
	}
	var dl, tl, rl, wl, ldl, ltl, hl []time.Duration
	for i := range warmup + n {
		// Alternate, so that both paths see the same machine state.
		d, err := callOnce(direct, "echo")
		if err != nil {
			return fmt.Errorf("direct: %w", err)
		}
		t, err := callOnce(through, "everything__echo")
		if err != nil {
			return fmt.Errorf("through warden: %w", err)
		}
		r, err := restOnce()
		if err != nil {
			return fmt.Errorf("through warden's REST API: %w", err)
		}
		w, err := rawOnce()
		if err != nil {
			return err
		}
		if i >= warmup {
			dl, tl, rl, wl = append(dl, d), append(tl, t), append(rl, r), append(wl, w)
		}
		if i%4 != 0 {
			continue
		}
		// ping: the transports alone. Through warden it is answered by
		// warden's MCP front end (HTTP, the SDK's stateless session), so
		// it is the floor of the HTTP path, with no dispatch or audit.
		if d, err = pingOnce(direct); err != nil {
			return fmt.Errorf("direct ping: %w", err)
		}
		if t, err = pingOnce(through); err != nil {
			return fmt.Errorf("ping through warden: %w", err)
		}
		h, err := healthOnce()
		if err != nil {
			return fmt.Errorf("GET /healthz: %w", err)
		}
		if i >= warmup {
			ldl, ltl, hl = append(ldl, d), append(ltl, t), append(hl, h)
		}
	}
	where := "disk (" + tmp + ")"
	if dir != "" {
		where = dir
	}
	fmt.Printf("MCP tools/call, %d calls each after %d warm-up, alternating; database on %s\n", n, warmup, where)
	fmt.Printf("upstream: server-everything echo over stdio (Node %s)\n\n", nodeVersion())
	fmt.Printf("%-34s %10s %10s %10s\n", "", "p50", "p90", "p99")
	pd, pt := pct(dl), pct(tl)
	fmt.Printf("%-34s %10s %10s %10s\n", "direct (Go SDK client, stdio)", pd[0], pd[1], pd[2])
	fmt.Printf("%-34s %10s %10s %10s\n", "through warden (HTTP /mcp)", pt[0], pt[1], pt[2])
	fmt.Printf("%-34s %10s %10s %10s\n", "added by warden", pt[0]-pd[0], pt[1]-pd[1], pt[2]-pd[2])
	pr := pct(rl)
	fmt.Printf("%-34s %10s %10s %10s\n", "same call via REST POST /v1/calls", pr[0], pr[1], pr[2])
	pw := pct(wl)
	fmt.Printf("%-34s %10s %10s %10s\n", "same call, raw JSON-RPC POST /mcp", pw[0], pw[1], pw[2])
	fmt.Printf("%-34s %10s %10s %10s\n", "MCP server side vs REST", pw[0]-pr[0], pw[1]-pr[1], pw[2]-pr[2])
	fmt.Printf("\nping (%d each): the transport floor\n", len(ldl))
	pd, pt = pct(ldl), pct(ltl)
	fmt.Printf("%-34s %10s %10s %10s\n", "upstream over stdio", pd[0], pd[1], pd[2])
	fmt.Printf("%-34s %10s %10s %10s\n", "warden's /mcp over HTTP", pt[0], pt[1], pt[2])
	ph := pct(hl)
	fmt.Printf("%-34s %10s %10s %10s\n", "warden's GET /healthz (plain HTTP)", ph[0], ph[1], ph[2])
	cancel()
	return <-done
}

// pct returns p50, p90 and p99.
func pct(d []time.Duration) [3]time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))].Round(time.Microsecond) }
	return [3]time.Duration{at(0.50), at(0.90), at(0.99)}
}

func nodeVersion() string {
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		return "?"
	}
	return string(out[:len(out)-1])
}
