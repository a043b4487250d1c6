// Package auditbench measures the audit write path: durable appends per
// second into the SQLite store with group commit (Store.Append) against one
// transaction per record (Store.AppendUnbatched), at several numbers of
// concurrent writers, each into a fresh database file, and reports the ratio
// measured in the same run. Every appended chain is verified afterwards, so a
// fast but wrong writer cannot win.
//
// Run prints the table; the whole-system load harness can call it. From the
// command line:
//
//	go run ./bench/load -duration 1s -saturate 1s   (prints this table last)
//	go test -run=^$ -bench=. ./bench/auditbench/
package auditbench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// Config says what to measure. Zero fields take defaults.
type Config struct {
	Writers  []int         // concurrent writers per measurement; default 1, 16, 64
	Duration time.Duration // how long each measurement appends; default 2s
}

func (c Config) withDefaults() Config {
	if len(c.Writers) == 0 {
		c.Writers = []int{1, 16, 64}
	}
	if c.Duration <= 0 {
		c.Duration = 2 * time.Second
	}
	return c
}

// Modes of appending.
const (
	Group     = "group"     // Store.Append: batched into one transaction per fsync
	Unbatched = "unbatched" // Store.AppendUnbatched: one transaction per record
)

// Result is one measurement.
type Result struct {
	Mode     string
	Writers  int
	Appends  int64         // durable appends completed
	Elapsed  time.Duration // from the first append to the last one returning
	P50, P99 time.Duration // latency of one append as its caller sees it
}

// PerSecond is the measured throughput.
func (r Result) PerSecond() float64 { return float64(r.Appends) / r.Elapsed.Seconds() }

// Run measures with the default Config in dir (which must exist; the files
// it creates there are removed again) and writes a table to w.
func Run(ctx context.Context, dir string, w io.Writer) error {
	return RunConfig(ctx, dir, w, Config{})
}

// RunConfig is Run with a chosen Config.
func RunConfig(ctx context.Context, dir string, w io.Writer, cfg Config) error {
	cfg = cfg.withDefaults()
	results, err := Measure(ctx, dir, cfg)
	if err != nil {
		return err
	}
	return WriteTable(w, cfg, results)
}

// Measure runs every measurement of cfg, group and unbatched at each number
// of writers, one after the other.
func Measure(ctx context.Context, dir string, cfg Config) ([]Result, error) {
	cfg = cfg.withDefaults()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := audit.NewSigner(key)
	if err != nil {
		return nil, err
	}
	var results []Result
	for _, n := range cfg.Writers {
		for _, mode := range []string{Group, Unbatched} {
			res, err := measure(ctx, dir, signer, mode, n, cfg.Duration)
			if err != nil {
				return results, fmt.Errorf("auditbench: %s, %d writers: %w", mode, n, err)
			}
			results = append(results, res)
		}
	}
	return results, nil
}

// measure appends from writers goroutines for d into a new database and
// verifies the chain they made.
func measure(ctx context.Context, dir string, signer *audit.Signer, mode string, writers int, d time.Duration) (Result, error) {
	path := filepath.Join(dir, fmt.Sprintf("auditbench-%s-%d.db", mode, writers))
	defer removeDB(path)
	if err := removeDB(path); err != nil {
		return Result{}, err
	}
	// A checkpoint every 1000 records, as in production.
	s, err := sqlite.Open(ctx, path, nil, sqlite.Options{Signer: signer})
	if err != nil {
		return Result{}, err
	}
	appendFn := s.Append
	if mode == Unbatched {
		appendFn = s.AppendUnbatched
	}

	latencies := make([][]time.Duration, writers)
	errs := make([]error, writers)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				r := benchRecord(w, i)
				t := time.Now()
				if err := appendFn(ctx, r); err != nil {
					errs[w] = err
					return
				}
				latencies[w] = append(latencies[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		s.Close()
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		s.Close()
		return Result{}, err
	}

	all := slices.Concat(latencies...)
	slices.Sort(all)
	res := Result{Mode: mode, Writers: writers, Appends: int64(len(all)), Elapsed: elapsed}
	if len(all) > 0 {
		res.P50 = all[len(all)/2]
		res.P99 = all[len(all)*99/100]
	}

	v, err := s.VerifyAudit(ctx, signer.Public())
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("verify: %w", err)
	}
	if v.Records != res.Appends {
		return res, fmt.Errorf("verify: %d records in the chain, %d appends returned", v.Records, res.Appends)
	}
	return res, nil
}

// benchRecord is a typical decision record: a few hundred bytes of JSON.
func benchRecord(writer, i int) *audit.Record {
	return &audit.Record{
		Time:          time.Now(),
		Tenant:        "acme",
		Agent:         fmt.Sprintf("agent-%d", writer%8),
		RunID:         fmt.Sprintf("run-%d", writer),
		FrontEnd:      audit.FrontEndREST,
		Kind:          audit.KindDecision,
		CallID:        fmt.Sprintf("call-%012d", i), // time-ordered, like the dispatcher's ids
		Connector:     "github",
		Action:        "create_pr",
		ActionType:    "write",
		Args:          []byte(fmt.Sprintf(`{"repo":"acme/api","title":"Bump dependencies (%d)","base":"main","head":"deps-%d","draft":false}`, i, i)),
		Environment:   "production",
		Decision:      "ALLOW",
		Rules:         []string{"permission:github.create_pr"},
		Reason:        "agent pr-reviewer may create_pr on github",
		ConfigVersion: "sha256:3f2a9c1e5b7d",
	}
}

func removeDB(path string) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// WriteTable prints results as a table with, for each number of writers,
// the group/unbatched throughput ratio.
func WriteTable(w io.Writer, cfg Config, results []Result) error {
	cfg = cfg.withDefaults()
	fmt.Fprintf(w, "durable audit appends/s, SQLite WAL synchronous=FULL, %s per cell, %s/%s, %d CPUs\n",
		cfg.Duration, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "writers\tgroup/s\tp50\tp99\tunbatched/s\tp50\tp99\tgroup/unbatched\t")
	byKey := map[string]Result{}
	for _, r := range results {
		byKey[fmt.Sprint(r.Mode, r.Writers)] = r
	}
	for _, n := range cfg.Writers {
		g, okG := byKey[fmt.Sprint(Group, n)]
		u, okU := byKey[fmt.Sprint(Unbatched, n)]
		if !okG || !okU {
			continue
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%s\t%s\t%.0f\t%s\t%s\t%.2fx\t\n", n,
			g.PerSecond(), round(g.P50), round(g.P99),
			u.PerSecond(), round(u.P50), round(u.P99),
			g.PerSecond()/u.PerSecond())
	}
	return tw.Flush()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
