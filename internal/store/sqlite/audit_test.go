package sqlite

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"github.com/warden-dev/warden/internal/store/storetest"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

var t0 = time.Date(2026, 11, 3, 3, 0, 0, 0, time.UTC)

func record(agent string, i int) *audit.Record {
	return &audit.Record{
		Time:      t0.Add(time.Duration(i) * time.Minute),
		Tenant:    "acme",
		Agent:     agent,
		FrontEnd:  audit.FrontEndREST,
		Kind:      audit.KindDecision,
		CallID:    fmt.Sprintf("call-%s-%d", agent, i),
		Connector: "github",
		Action:    "create_pr",
		Args:      []byte(fmt.Sprintf(`{"n": %d, "title": "pr %d"}`, i, i)),
		Decision:  "ALLOW",
		Rules:     []string{"rule-a"},
	}
}

func mustVerify(t *testing.T, s *Store, pub ed25519.PublicKey, wantRecords int64) audit.VerifyResult {
	t.Helper()
	res, err := s.VerifyAudit(context.Background(), pub)
	if err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	if res.Records != wantRecords {
		t.Fatalf("VerifyAudit: %d records, want %d", res.Records, wantRecords)
	}
	return res
}

func count(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAppend(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "w.db"), Options{})
	ctx := context.Background()
	prev := audit.GenesisHash
	for i := 1; i <= 3; i++ {
		r := record("a", i)
		if err := s.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.Seq != int64(i) || r.PrevHash != prev || len(r.Hash) != 64 || r.ID == "" {
			t.Errorf("record %d: seq %d prev %.8s hash %.8s id %q", i, r.Seq, r.PrevHash, r.Hash, r.ID)
		}
		prev = r.Hash
	}
	if seq, hash := s.Head(); seq != 3 || hash != prev {
		t.Errorf("Head() = %d %.8s, want 3 %.8s", seq, hash, prev)
	}
	// A record without a time gets one.
	r := &audit.Record{Kind: audit.KindDecision}
	if err := s.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.Time.IsZero() {
		t.Error("Append left Time zero")
	}
	if got := s.QueueDepth(); got != 0 {
		t.Errorf("QueueDepth() = %d after every Append returned, want 0", got)
	}

	// What comes back is what went in.
	got, err := s.AuditRecords(ctx, AuditFilter{AfterSeq: 1, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := record("a", 2)
	if len(got) != 1 || got[0].Seq != 2 || got[0].CallID != want.CallID || !got[0].Time.Equal(want.Time) ||
		string(got[0].Args) != `{"n":2,"title":"pr 2"}` || !slices.Equal(got[0].Rules, want.Rules) {
		t.Errorf("AuditRecords = %+v", got)
	}
	mustVerify(t, s, nil, 4)
}

// TestAppendConcurrent: many goroutines appending at once produce one
// contiguous, verified chain, with the checkpoints it should have.
func TestAppendConcurrent(t *testing.T) {
	signer := storetest.NewSigner(t)
	s := openTest(t, filepath.Join(t.TempDir(), "w.db"), Options{Signer: signer, CheckpointEvery: 50})
	const writers, each = 64, 20
	seqs := make([][]int64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := record(fmt.Sprintf("agent-%d", w), i)
				if err := s.Append(context.Background(), r); err != nil {
					t.Errorf("writer %d: Append: %v", w, err)
					return
				}
				seqs[w] = append(seqs[w], r.Seq)
			}
		})
	}
	wg.Wait()
	var all []int64
	for _, ss := range seqs {
		all = append(all, ss...)
	}
	slices.Sort(all)
	for i, seq := range all {
		if seq != int64(i+1) {
			t.Fatalf("seqs handed out are not 1..%d: position %d has %d", writers*each, i, seq)
		}
	}
	res := mustVerify(t, s, signer.Public(), writers*each)
	if want := writers * each / 50; res.Checkpoints != want || !res.Signed {
		t.Errorf("verified %d checkpoints (signed %v), want %d signed", res.Checkpoints, res.Signed, want)
	}
	cps, err := s.Checkpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, cp := range cps {
		if cp.Seq != int64(50*(i+1)) || cp.KeyID != signer.KeyID() {
			t.Errorf("checkpoint %d: seq %d key %s", i, cp.Seq, cp.KeyID)
		}
	}
}

// TestTamper changes the stored trail behind the Store's back, with plain
// SQL, and checks that VerifyAudit names the first bad seq.
func TestTamper(t *testing.T) {
	const n = 10 // checkpoints at 4 and 8
	tests := []struct {
		name    string
		sql     []string
		wantSeq int64
		want    string
	}{
		{"agent column changed", []string{`UPDATE audit_records SET agent = 'mallory' WHERE seq = 5`}, 5, "altered"},
		{"tenant column changed", []string{`UPDATE audit_records SET tenant = 'other' WHERE seq = 2`}, 2, "altered"},
		{"decision column changed", []string{`UPDATE audit_records SET decision = 'DENY' WHERE seq = 9`}, 9, "altered"},
		{"time column changed", []string{`UPDATE audit_records SET time = '2020-01-01T00:00:00.000000000Z' WHERE seq = 3`}, 3, "altered"},
		{"kind column changed", []string{`UPDATE audit_records SET kind = 'outcome' WHERE seq = 1`}, 1, "altered"},
		{"call_id column changed", []string{`UPDATE audit_records SET call_id = 'x' WHERE seq = 6`}, 6, "altered"},
		{"id column changed", []string{`UPDATE audit_records SET id = 'x' WHERE seq = 6`}, 6, "altered"},
		{"body changed", []string{`UPDATE audit_records SET body = replace(body, '"connector":"github"', '"connector":"gitlab"') WHERE seq = 5`}, 5, "altered"},
		{"args in body changed", []string{`UPDATE audit_records SET body = replace(body, '"n":7', '"n":70') WHERE seq = 7`}, 7, "altered"},
		{"hash changed", []string{`UPDATE audit_records SET hash = '` + strings.Repeat("0", 64) + `' WHERE seq = 5`}, 5, "altered"},
		{"body not JSON", []string{`UPDATE audit_records SET body = 'garbage' WHERE seq = 3`}, 3, "decoded"},
		{"field added to body", []string{`UPDATE audit_records SET body = replace(body, '{"action"', '{"extra":1,"action"') WHERE seq = 3`}, 3, "decoded"},
		{"row deleted", []string{`DELETE FROM audit_records WHERE seq = 5`}, 5, "missing"},
		{"two rows swapped", []string{
			`UPDATE audit_records SET seq = -1 WHERE seq = 5`,
			`UPDATE audit_records SET seq = 5 WHERE seq = 6`,
			`UPDATE audit_records SET seq = 6 WHERE seq = -1`,
		}, 5, "prev_hash"},
		{"two bodies swapped", []string{
			`UPDATE audit_records SET body = (SELECT body FROM audit_records WHERE seq = 7), hash = (SELECT hash FROM audit_records WHERE seq = 7) WHERE seq = 6`,
		}, 6, "prev_hash"},
		{"tail truncated after a checkpoint", []string{`DELETE FROM audit_records WHERE seq > 6`}, 7, "truncated"},
		{"tail truncated through a checkpoint", []string{`DELETE FROM audit_records WHERE seq >= 8`}, 8, "truncated"},
		{"checkpoint signature forged", []string{`UPDATE audit_checkpoints SET signature = zeroblob(64) WHERE seq = 4`}, 4, "signature"},
		{"checkpoint hash changed", []string{`UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_records WHERE seq = 3) WHERE seq = 4`}, 4, "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "w.db")
			signer := storetest.NewSigner(t)
			s := openTest(t, path, Options{Signer: signer, CheckpointEvery: 4})
			for i := 1; i <= n; i++ {
				if err := s.Append(context.Background(), record("a", i)); err != nil {
					t.Fatal(err)
				}
			}
			mustVerify(t, s, signer.Public(), n)

			db := rawDB(t, path)
			// The guard triggers stop accidents, not attackers.
			if _, err := db.Exec(`UPDATE audit_records SET agent = 'x' WHERE seq = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("update through the guard: err = %v, want append-only refusal", err)
			}
			for _, trig := range []string{"audit_records_append_only_update", "audit_records_append_only_delete",
				"audit_checkpoints_append_only_update", "audit_checkpoints_append_only_delete"} {
				if _, err := db.Exec("DROP TRIGGER " + trig); err != nil {
					t.Fatal(err)
				}
			}
			for _, q := range tt.sql {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}

			_, err := s.VerifyAudit(context.Background(), signer.Public())
			var ve *audit.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("VerifyAudit: err = %v, want a *audit.VerifyError", err)
			}
			if ve.Seq != tt.wantSeq || !strings.Contains(ve.Problem, tt.want) {
				t.Errorf("VerifyError{Seq: %d, Problem: %q}, want seq %d, problem mentioning %q", ve.Seq, ve.Problem, tt.wantSeq, tt.want)
			}
		})
	}
}

// TestReopenContinues: a new Store on an existing file continues its chain.
func TestReopenContinues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	signer := storetest.NewSigner(t)
	ctx := context.Background()
	var lastHash string
	for round := range 3 {
		s, err := Open(ctx, path, nil, Options{Signer: signer, CheckpointEvery: 4})
		if err != nil {
			t.Fatal(err)
		}
		if seq, hash := s.Head(); seq != int64(round*5) || (round > 0 && hash != lastHash) {
			t.Errorf("round %d: Head() = %d %.8s, want %d %.8s", round, seq, hash, round*5, lastHash)
		}
		for i := range 5 {
			r := record("a", i)
			if err := s.Append(ctx, r); err != nil {
				t.Fatal(err)
			}
			if want := int64(round*5 + i + 1); r.Seq != want {
				t.Errorf("round %d: seq %d, want %d", round, r.Seq, want)
			}
			lastHash = r.Hash
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s := openTest(t, path, Options{})
	// Every 4 records, and at each Close: 4, 5, 9, 10, 14, 15.
	if res := mustVerify(t, s, signer.Public(), 15); res.Checkpoints != 6 {
		t.Errorf("checkpoints = %d, want 6 (at 4, 5, 9, 10, 14, 15)", res.Checkpoints)
	}
}

// TestTwoStores: two Stores on one file, as the server and a CLI command in
// two processes, appending at once, still make one valid chain.
func TestTwoStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	signer := storetest.NewSigner(t)
	a := openTest(t, path, Options{Signer: signer, CheckpointEvery: 25})
	b := openTest(t, path, Options{Signer: signer, CheckpointEvery: 25})
	const writers, each = 16, 20
	var wg sync.WaitGroup
	for w := range writers {
		for _, s := range []*Store{a, b} {
			wg.Go(func() {
				for i := range each {
					var err error
					if i%5 == 4 {
						err = s.AppendUnbatched(context.Background(), record(fmt.Sprintf("w%d", w), i))
					} else {
						err = s.Append(context.Background(), record(fmt.Sprintf("w%d", w), i))
					}
					if err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	res := mustVerify(t, a, signer.Public(), 2*writers*each)
	if want := 2 * writers * each / 25; res.Checkpoints != want {
		t.Errorf("checkpoints = %d, want %d", res.Checkpoints, want)
	}
	mustVerify(t, b, signer.Public(), 2*writers*each)
}

// TestCommitFailure makes COMMIT itself fail (a deferred foreign key that a
// trigger violates) and checks that every Append of the batch fails, nothing
// is visible, and the chain continues once the cause is gone.
func TestCommitFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := openTest(t, path, Options{})
	ctx := context.Background()
	for i := range 3 {
		if err := s.Append(ctx, record("a", i)); err != nil {
			t.Fatal(err)
		}
	}
	db := rawDB(t, path)
	for _, q := range []string{
		`CREATE TABLE parent (id INTEGER PRIMARY KEY)`,
		`CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`,
		`CREATE TRIGGER break_commit AFTER INSERT ON audit_records BEGIN INSERT INTO child VALUES (42); END`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}

	const n = 16
	recs := make([]*audit.Record, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		recs[i] = record("b", i)
		wg.Go(func() { errs[i] = s.Append(ctx, recs[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "commit") {
			t.Errorf("Append %d: err = %v, want a commit failure", i, err)
		}
		if recs[i].Seq != 0 || recs[i].Hash != "" {
			t.Errorf("Append %d failed but left seq %d hash %q on the record", i, recs[i].Seq, recs[i].Hash)
		}
	}
	if got := count(t, db, "audit_records"); got != 3 {
		t.Errorf("%d records visible after failed commits, want 3", got)
	}
	if got := s.QueueDepth(); got != 0 {
		t.Errorf("QueueDepth() = %d, want 0", got)
	}
	if err := s.AppendUnbatched(ctx, record("b", 99)); err == nil {
		t.Error("AppendUnbatched succeeded while commits fail")
	}

	if _, err := db.Exec(`DROP TRIGGER break_commit`); err != nil {
		t.Fatal(err)
	}
	r := record("c", 0)
	if err := s.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.Seq != 4 {
		t.Errorf("first record after the failures has seq %d, want 4", r.Seq)
	}
	mustVerify(t, s, nil, 4)
}

// TestBadRecordFailsAlone: a record that cannot be encoded fails its own
// Append and nobody else's.
func TestClosed(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Append(context.Background(), record("a", 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: err = %v, want ErrClosed", err)
	}
	if err := s.AppendUnbatched(context.Background(), record("a", 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendUnbatched after Close: err = %v, want ErrClosed", err)
	}
	if _, err := s.AuditRecords(context.Background(), AuditFilter{}); err == nil {
		t.Error("AuditRecords after Close succeeded")
	}
}

// TestQueueDepth holds the write lock from another connection, as another
// process would, and watches appends queue up behind it.
func TestQueueDepth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := openTest(t, path, Options{})
	lock, err := rawDB(t, path).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.Append(context.Background(), record("a", i)); err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
	for s.QueueDepth() < n {
		runtime.Gosched()
	}
	if got := s.QueueDepth(); got != n {
		t.Errorf("QueueDepth() = %d, want %d", got, n)
	}
	if _, err := lock.ExecContext(context.Background(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if got := s.QueueDepth(); got != 0 {
		t.Errorf("QueueDepth() = %d after the appends returned, want 0", got)
	}
	mustVerify(t, s, nil, n)
}

func TestAuditRecords(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "w.db"), Options{})
	ctx := context.Background()
	// seq 1..12: agents a, b, c in turn, a minute apart; tenant "other" for
	// c; every fourth record DENY.
	for i := 1; i <= 12; i++ {
		r := record(string(rune('a'+(i-1)%3)), i)
		if r.Agent == "c" {
			r.Tenant = "other"
		}
		if i%4 == 0 {
			r.Decision = "DENY"
		}
		if err := s.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	tests := []struct {
		name string
		f    AuditFilter
		want []int64
	}{
		{"all", AuditFilter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"agent", AuditFilter{Agent: "b"}, []int64{2, 5, 8, 11}},
		{"tenant", AuditFilter{Tenant: "other"}, []int64{3, 6, 9, 12}},
		{"decision", AuditFilter{Decision: "DENY"}, []int64{4, 8, 12}},
		{"agent and decision", AuditFilter{Agent: "b", Decision: "DENY"}, []int64{8}},
		{"call id", AuditFilter{CallID: "call-a-7"}, []int64{7}},
		{"since inclusive", AuditFilter{Since: at(10)}, []int64{10, 11, 12}},
		{"until exclusive", AuditFilter{Until: at(3)}, []int64{1, 2}},
		{"window", AuditFilter{Since: at(4), Until: at(6)}, []int64{4, 5}},
		{"window, nanosecond edge", AuditFilter{Since: at(4).Add(1), Until: at(6).Add(1)}, []int64{5, 6}},
		{"window in another zone", AuditFilter{Since: at(4).In(time.FixedZone("X", -5*3600))}, []int64{4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"after seq", AuditFilter{AfterSeq: 9}, []int64{10, 11, 12}},
		{"limit", AuditFilter{Limit: 2}, []int64{1, 2}},
		{"desc limit (tail)", AuditFilter{Desc: true, Limit: 3}, []int64{12, 11, 10}},
		{"desc page before", AuditFilter{Desc: true, BeforeSeq: 10, Limit: 3}, []int64{9, 8, 7}},
		{"agent desc", AuditFilter{Agent: "a", Desc: true}, []int64{10, 7, 4, 1}},
		{"nothing", AuditFilter{Agent: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := s.AuditRecords(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range recs {
				got = append(got, r.Seq)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("seqs = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := s.AuditRecords(ctx, AuditFilter{Limit: -1}); err == nil {
		t.Error("negative limit accepted")
	}
}

func TestAuditAllStops(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "w.db"), Options{})
	for i := range 5 {
		if err := s.Append(context.Background(), record("a", i)); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("enough")
	var seen []int64
	err := s.AuditAll(context.Background(), func(r *audit.Record) error {
		seen = append(seen, r.Seq)
		if r.Seq == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !slices.Equal(seen, []int64{1, 2, 3}) {
		t.Errorf("AuditAll: err %v, saw %v; want %v after 1 2 3", err, seen, stop)
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, mode := range []string{"group", "unbatched"} {
		b.Run(mode, func(b *testing.B) {
			s, err := Open(context.Background(), filepath.Join(b.TempDir(), "w.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					r := record("bench", i)
					var err error
					if mode == "group" {
						err = s.Append(context.Background(), r)
					} else {
						err = s.AppendUnbatched(context.Background(), r)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestAppendWith: state changed by apply is committed with its record or
// not at all, and one record's refusal does not affect the others.
func TestAppendWith(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "w.db"), Options{})
	if _, err := s.DB().Exec("CREATE TABLE state (call_id TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	errConflict := errors.New("conflict")
	insertState := func(ctx context.Context, tx *sql.Tx, id string) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO state VALUES (?)", id)
		return err
	}
	tests := []struct {
		name    string
		apply   func(ctx context.Context, tx *sql.Tx, id string) error
		nan     bool  // make the record unencodable
		wantErr error // nil: success; otherwise errors.Is target, or errAny
	}{
		{"applied", insertState, false, nil},
		{"skipped", func(ctx context.Context, tx *sql.Tx, id string) error {
			if err := insertState(ctx, tx, id); err != nil {
				return err
			}
			return sqlshared.Skip(errConflict)
		}, false, errConflict},
		{"failed", func(ctx context.Context, tx *sql.Tx, id string) error {
			if err := insertState(ctx, tx, id); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO no_such_table VALUES (1)")
			return err
		}, false, errAny},
		{"record unencodable", insertState, true, errAny},
	}
	const rounds = 8
	type result struct {
		id   string
		rec  *audit.Record
		err  error
		want error
	}
	var results []*result
	var wg sync.WaitGroup
	for i := range rounds {
		for _, tt := range tests {
			res := &result{id: fmt.Sprintf("%s-%d", tt.name, i), want: tt.wantErr}
			res.rec = record("a", i)
			res.rec.CallID = res.id
			if tt.nan {
				res.rec.CostUSD = math.NaN()
			}
			results = append(results, res)
			wg.Go(func() {
				res.err = s.appendWith(context.Background(), res.rec, func(ctx context.Context, tx *sql.Tx) error {
					return tt.apply(ctx, tx, res.id)
				})
			})
		}
	}
	wg.Wait()
	written := 0
	for _, res := range results {
		var inState int
		if err := s.DB().QueryRow("SELECT count(*) FROM state WHERE call_id = ?", res.id).Scan(&inState); err != nil {
			t.Fatal(err)
		}
		recs, err := s.AuditRecords(context.Background(), AuditFilter{CallID: res.id})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case res.want == nil:
			if res.err != nil || inState != 1 || len(recs) != 1 {
				t.Errorf("%s: err %v, %d state rows, %d records; want success, 1, 1", res.id, res.err, inState, len(recs))
			}
			written++
		default:
			if res.err == nil || (res.want != errAny && res.err != res.want) || inState != 0 || len(recs) != 0 || res.rec.Seq != 0 {
				t.Errorf("%s: err %v, %d state rows, %d records, seq %d; want %v, 0, 0, 0", res.id, res.err, inState, len(recs), res.rec.Seq, res.want)
			}
		}
	}
	mustVerify(t, s, nil, int64(written))
}

// errAny stands for any error in a test table.
var errAny = errors.New("any error")
