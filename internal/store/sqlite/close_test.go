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

// TestAnnounce: a command that announces it is waiting to write makes the
// other stores' writers see it, until it closes.
func TestAnnounce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	server, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if server.othersWaiting() {
		t.Fatal("a waiting writer before anyone announced one")
	}
	cli, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli.Announce()
	server.waitCheckedAt = server.waitCheckedAt.AddDate(-1, 0, 0) // skip the 50 ms cache
	if !server.othersWaiting() {
		t.Error("the server's writer does not see the announced command")
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	server.waitCheckedAt = server.waitCheckedAt.AddDate(-1, 0, 0)
	if server.othersWaiting() {
		t.Error("the announcement outlived the command's Close")
	}
}
