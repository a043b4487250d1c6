package dispatch_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/policy"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// TestReapInterrupted: a call left running by a crash is closed, once, as
// failed with an outcome record, but only after the execution timeout.
func TestReapInterrupted(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := config.Parse([]config.File{{Name: "c.yaml", Data: []byte("kind: agent\nname: a\n")}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := dispatch.New(dispatch.Options{Store: st, Now: clock, ExecTimeout: time.Minute}, &dispatch.Snapshot{Engine: policy.New(cfg)})

	// What a crash leaves: a decision record and a running state.
	running := &dispatch.State{ID: call.NewID("call", now), Tenant: "default", Agent: "a", Connector: "c", Action: "x",
		Decision: call.Allow, Status: dispatch.StatusRunning, CreatedAt: now, UpdatedAt: now, Args: json.RawMessage(`{}`)}
	if err := st.Commit(ctx, &audit.Record{Kind: audit.KindDecision, CallID: running.ID, Time: now}, running); err != nil {
		t.Fatal(err)
	}

	now = now.Add(90 * time.Second) // past the execution timeout, not past the margin
	if n, err := d.ReapInterrupted(ctx); err != nil || n != 0 {
		t.Fatalf("early reap = %d, %v; want 0", n, err)
	}
	now = now.Add(time.Hour)
	if n, err := d.ReapInterrupted(ctx); err != nil || n != 1 {
		t.Fatalf("reap = %d, %v; want 1", n, err)
	}
	if n, _ := d.ReapInterrupted(ctx); n != 0 {
		t.Fatalf("second reap = %d; want 0", n)
	}
	got, err := st.CallState(ctx, running.ID)
	if err != nil || got.Status != dispatch.StatusFailed || got.Error == "" {
		t.Fatalf("state = %+v, %v; want failed with an error", got, err)
	}
	recs, err := st.AuditRecords(ctx, sqlite.AuditFilter{CallID: running.ID})
	if err != nil || len(recs) != 2 || recs[1].Kind != audit.KindOutcome || recs[1].Outcome != audit.OutcomeFailed {
		t.Fatalf("records = %d, %v; want decision then a failed outcome", len(recs), err)
	}
}
