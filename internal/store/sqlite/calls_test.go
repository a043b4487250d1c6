package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/dispatch"
)

// TestCommitRevision: two changes made to the same read of a call — two
// partial votes, say — cannot both be saved; the second gets ErrConflict
// and its audit record is not appended.
func TestCommitRevision(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	st := &dispatch.State{ID: "call_1", Tenant: "t", Agent: "a", Status: dispatch.StatusPending, CreatedAt: now, UpdatedAt: now, Args: json.RawMessage(`{}`)}
	if err := s.Commit(ctx, &audit.Record{Kind: audit.KindDecision, CallID: st.ID}, st); err != nil {
		t.Fatal(err)
	}
	a, _ := s.CallState(ctx, st.ID)
	b, _ := s.CallState(ctx, st.ID)
	for _, x := range []*dispatch.State{a, b} {
		x.PrevStatus = dispatch.StatusPending
	}
	a.Reason = "first vote"
	if err := s.Commit(ctx, &audit.Record{Kind: audit.KindApproval, CallID: st.ID}, a); err != nil {
		t.Fatalf("first change: %v", err)
	}
	b.Reason = "second vote, made to the old revision"
	if err := s.Commit(ctx, &audit.Record{Kind: audit.KindApproval, CallID: st.ID}, b); !errors.Is(err, dispatch.ErrConflict) {
		t.Fatalf("second change: err = %v, want ErrConflict", err)
	}
	got, _ := s.CallState(ctx, st.ID)
	if got.Reason != "first vote" || got.Revision != 1 {
		t.Errorf("state = %q rev %d, want the first vote at revision 1", got.Reason, got.Revision)
	}
	// The same state, re-read, commits fine: the retry path.
	got.PrevStatus = dispatch.StatusPending
	got.Reason = "second vote, retried"
	if err := s.Commit(ctx, &audit.Record{Kind: audit.KindApproval, CallID: st.ID}, got); err != nil || got.Revision != 2 {
		t.Fatalf("retry: %v, revision %d", err, got.Revision)
	}
	recs, _ := s.AuditRecords(ctx, AuditFilter{CallID: st.ID})
	if len(recs) != 3 {
		t.Errorf("%d records, want 3 (the refused change appended nothing)", len(recs))
	}
}
