package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/warden-dev/warden/internal/audit"
)

// TestFinalCheckpointOnClose: a clean Close signs the head, so no unsigned
// tail is left behind.
func TestFinalCheckpointOnClose(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	signer, err := audit.LoadOrCreateKey(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "w.db")
	s, err := Open(ctx, path, nil, Options{Signer: signer, CheckpointEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Append(ctx, &audit.Record{Kind: audit.KindDecision, Agent: fmt.Sprint("a", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 1 || cps[0].Seq != 3 {
		t.Fatalf("checkpoints = %+v, want one at seq 3", cps)
	}
	res, err := s.VerifyAudit(ctx, signer.Public())
	if err != nil || res.Checkpoints != 1 {
		t.Errorf("verify = %+v, %v", res, err)
	}
}
