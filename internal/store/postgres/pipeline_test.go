package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/postgres/pgtest"
	"github.com/warden-dev/warden/internal/store/storetest"
)

// TestPipelinedBatch: batches of one group commit, queued in a known
// order while the audit lock is held elsewhere, mixing plain appends,
// successful state changes and conflicting claims of one call, are
// written pipelined with the answers the record-by-record path gives;
// with a state change that fails (a new call whose id exists), or a
// changed call whose record cannot be sealed, the batch goes record by
// record and that record alone fails, its change undone. Every record
// answered nil is in the trail, no other is, seqs are contiguous and
// the chain and its checkpoints verify.
func TestPipelinedBatch(t *testing.T) {
	for _, mode := range []string{"pipelined", "statement error", "seal error"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			signer := storetest.NewSigner(t)
			s := openTest(t, pgtest.NewDatabase(t), Options{Signer: signer, CheckpointEvery: 2})
			defer s.Close()
			now := time.Now().UTC()
			newCall := func(id string) *dispatch.State {
				return &dispatch.State{ID: id, Tenant: "acme", Agent: "bot", Status: dispatch.StatusApproved,
					CreatedAt: now, UpdatedAt: now, Args: json.RawMessage(`{"n":1}`)}
			}
			for _, id := range []string{"c1", "c2"} {
				if err := s.Commit(ctx, &audit.Record{Kind: audit.KindDecision, CallID: id}, newCall(id)); err != nil {
					t.Fatal(err)
				}
			}
			claim := func(id string) *dispatch.State {
				st, err := s.CallState(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				st.PrevStatus, st.Status = st.Status, dispatch.StatusRunning
				return st
			}
			type op struct {
				name string
				rec  *audit.Record
				st   *dispatch.State // nil: a plain append
				want func(error) bool
			}
			ok := func(err error) bool { return err == nil }
			conflict := func(err error) bool { return errors.Is(err, dispatch.ErrConflict) }
			failed := func(err error) bool { return err != nil && !errors.Is(err, dispatch.ErrConflict) }
			rec := func(id string) *audit.Record { return &audit.Record{Kind: audit.KindStarted, CallID: id, Agent: "bot"} }
			ops := []op{
				{"plain 1", rec(""), nil, ok},
				{"claim c1", rec("c1"), claim("c1"), ok},
				{"claim c1 again", rec("c1"), claim("c1"), conflict},
				{"new c3", rec("c3"), newCall("c3"), ok},
				{"claim c2", rec("c2"), claim("c2"), ok},
				{"plain 2", rec(""), nil, ok},
				{"claim c2 again", rec("c2"), claim("c2"), conflict},
				{"claim c1 a third time", rec("c1"), claim("c1"), conflict},
				{"plain 3", rec(""), nil, ok},
			}
			switch mode {
			case "statement error":
				// After "claim c1": a new call c2 (it exists) fails alone.
				ops = append(ops[:2], append([]op{{"new c2 (exists)", rec("c2"), newCall("c2"), failed}}, ops[2:]...)...)
			case "seal error":
				// Before "claim c2": a claim of c2 whose record cannot be
				// sealed fails alone, its change undone: "claim c2" succeeds.
				bad := rec("c2")
				bad.Args = json.RawMessage(`{"a":`)
				ops = append(ops[:4], append([]op{{"claim c2, unsealable", bad, claim("c2"), failed}}, ops[4:]...)...)
			}

			// Hold the audit lock so that the writer waits in a batch of
			// one blocker, while ops queue in order for the next batch.
			lock, err := s.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Rollback(ctx) //nolint:errcheck // committed below
			if _, err := lock.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", auditLock); err != nil {
				t.Fatal(err)
			}
			waitFor := func(what string, cond func() bool) {
				t.Helper()
				for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("timed out waiting for %s", what)
					}
				}
			}
			var wg sync.WaitGroup
			errs := make([]error, len(ops)+1)
			wg.Add(1)
			go func() { defer wg.Done(); errs[len(ops)] = s.Append(ctx, rec("blocker")) }()
			waitFor("the blocker's batch", func() bool { return s.writer.Depth() == 1 && s.writer.Queued() == 0 })
			before := s.pipelined.Load() + s.fallbacks.Load()
			for i, o := range ops {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if o.st == nil {
						errs[i] = s.Append(ctx, o.rec)
					} else {
						errs[i] = s.Commit(ctx, o.rec, o.st)
					}
				}()
				waitFor(o.name+" queued", func() bool { return s.writer.Queued() == i+1 })
			}
			if err := lock.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if errs[len(ops)] != nil {
				t.Fatalf("blocker: %v", errs[len(ops)])
			}
			// The blocker's batch, then the ops' batch.
			if n := s.pipelined.Load() + s.fallbacks.Load() - before; n != 2 {
				t.Fatalf("blocker and ops written in %d batches, want 2", n)
			}
			wantFallbacks := int64(1)
			if mode == "pipelined" {
				wantFallbacks = 0
			}
			if n := s.fallbacks.Load(); n != wantFallbacks {
				t.Errorf("%d batches went record by record, want %d", n, wantFallbacks)
			}

			recs, err := s.AuditRecords(ctx, store.AuditFilter{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			stored := map[string]bool{}
			for i, r := range recs {
				if r.Seq != int64(i+1) {
					t.Fatalf("record %d has seq %d: not contiguous", i, r.Seq)
				}
				stored[r.ID] = true
			}
			written := 3 // c1, c2 and the blocker
			for i, o := range ops {
				if !o.want(errs[i]) {
					t.Errorf("%s: %v", o.name, errs[i])
				}
				if errs[i] == nil {
					written++
					if !stored[o.rec.ID] || o.rec.Seq == 0 || o.rec.Hash == "" {
						t.Errorf("%s: answered nil, but its record (seq %d) is not in the trail", o.name, o.rec.Seq)
					}
				} else if stored[o.rec.ID] || o.rec.Seq != 0 {
					t.Errorf("%s: answered %v, but its record is in the trail (seq %d)", o.name, errs[i], o.rec.Seq)
				}
			}
			if len(recs) != written {
				t.Errorf("%d records in the trail, want %d", len(recs), written)
			}
			res, err := s.VerifyAudit(ctx, signer.Public())
			if err != nil || res.LastSeq != int64(written) {
				t.Fatalf("verify: %+v %v", res, err)
			}
			cps, err := s.Checkpoints(ctx)
			if err != nil || len(cps) != written/2 {
				t.Errorf("%d checkpoints (%v), want %d", len(cps), err, written/2)
			}
			// Each claimed call changed once; c3 exists; c2 is still c2.
			for id, want := range map[string]string{"c1": dispatch.StatusRunning, "c2": dispatch.StatusRunning, "c3": dispatch.StatusApproved} {
				st, err := s.CallState(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				wantRev := 1
				if id == "c3" {
					wantRev = 0
				}
				if st.Status != want || st.Revision != int64(wantRev) || st.Agent != "bot" {
					t.Errorf("%s: status %s revision %d, want %s revision %d", id, st.Status, st.Revision, want, wantRev)
				}
			}
		})
	}
}
