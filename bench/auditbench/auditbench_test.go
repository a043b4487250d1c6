package auditbench

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/store/sqlite"
)

// TestRunShort runs a tiny measurement to keep the harness working.
func TestRunShort(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	cfg := Config{Writers: []int{1, 4}, Duration: 50 * time.Millisecond}
	if err := RunConfig(context.Background(), dir, &out, cfg); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 { // title, header, one row per writer count
		t.Fatalf("table has %d lines, want 4:\n%s", len(lines), out.String())
	}
	for _, l := range lines[2:] {
		if !strings.HasSuffix(strings.TrimSpace(l), "x") {
			t.Errorf("row without a ratio: %q", l)
		}
	}
	left, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("database files left behind: %v", left)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := RunConfig(ctx, t.TempDir(), &bytes.Buffer{}, Config{Writers: []int{1}, Duration: time.Second})
	if err == nil {
		t.Error("a cancelled run reported success")
	}
}

// BenchmarkAppend appends b.N records from exactly n goroutines; compare
// the group and unbatched ns/op (or appends/s) at the same n.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 16, 64} {
		for _, mode := range []string{Group, Unbatched} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode, n), func(b *testing.B) {
				s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "w.db"), nil)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				appendFn := s.Append
				if mode == Unbatched {
					appendFn = s.AppendUnbatched
				}
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for w := range n {
					wg.Go(func() {
						for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
							if err := appendFn(context.Background(), benchRecord(w, int(i))); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			})
		}
	}
}
