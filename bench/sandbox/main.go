// Command sandbox measures what the sandbox costs to start: it runs `true`
// N times directly (fork+exec) and N times through sandbox.Run (bubblewrap,
// namespaces, the init shim's rlimits, Landlock and seccomp, then exec),
// interleaved in the same run, and prints p50, p90, p99 and max of each and
// the added cost.
//
//	go run ./bench/sandbox [-n 200] [-egress]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/warden-dev/warden/internal/sandbox"
	"github.com/warden-dev/warden/internal/sandbox/egress"
)

func main() {
	n := flag.Int("n", 200, "runs of each")
	withEgress := flag.Bool("egress", false, "also measure a sandbox with egress (proxy + in-sandbox forwarder)")
	flag.Parse()
	if err := sandbox.Available(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	direct := func() error { return exec.Command(truePath).Run() }
	boxed := func(spec sandbox.Spec) func() error {
		return func() error {
			res, err := sandbox.Run(ctx, spec)
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("exit %d: %s", res.ExitCode, res.Stderr)
			}
			return err
		}
	}
	kinds := []struct {
		name string
		run  func() error
	}{
		{"direct", direct},
		{"sandboxed", boxed(sandbox.Spec{Argv: []string{"true"}})},
	}
	if *withEgress {
		kinds = append(kinds, struct {
			name string
			run  func() error
		}{"sandboxed+egress", boxed(sandbox.Spec{Argv: []string{"true"}, Egress: &egress.Options{Allow: []string{"example.org"}}})})
	}
	// Warm up, then interleave so that both see the same machine.
	for _, k := range kinds {
		for range 5 {
			if err := k.run(); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", k.name, err)
				os.Exit(1)
			}
		}
	}
	times := make([][]time.Duration, len(kinds))
	for range *n {
		for i, k := range kinds {
			start := time.Now()
			if err := k.run(); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", k.name, err)
				os.Exit(1)
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	fmt.Printf("sandbox start-up: `true`, %d runs each, interleaved (landlock ABI %d)\n", *n, sandbox.LandlockABI())
	fmt.Printf("%-18s %10s %10s %10s %10s\n", "", "p50", "p90", "p99", "max")
	p := make([][4]time.Duration, len(kinds))
	for i, k := range kinds {
		slices.Sort(times[i])
		t := times[i]
		p[i] = [4]time.Duration{pct(t, 50), pct(t, 90), pct(t, 99), t[len(t)-1]}
		fmt.Printf("%-18s %10v %10v %10v %10v\n", k.name, r(p[i][0]), r(p[i][1]), r(p[i][2]), r(p[i][3]))
	}
	for i := 1; i < len(kinds); i++ {
		fmt.Printf("added by %s: p50 +%v, p99 +%v\n", kinds[i].name, r(p[i][0]-p[0][0]), r(p[i][2]-p[0][2]))
	}
}

func pct(sorted []time.Duration, q int) time.Duration {
	i := (len(sorted)*q + 99) / 100
	if i > 0 {
		i--
	}
	return sorted[i]
}

func r(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
