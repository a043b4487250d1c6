package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/postgres/pgtest"
	"github.com/warden-dev/warden/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openTest(t *testing.T, db string, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), db, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		NewDB: func(t *testing.T) string { return pgtest.NewDatabase(t) },
		Open: func(t *testing.T, db string, o storetest.Options) store.Store {
			return openTest(t, db, Options{Signer: o.Signer, CheckpointEvery: o.CheckpointEvery})
		},
	})
}

// TestAppendOnly: the trail refuses UPDATE, DELETE and TRUNCATE, for the
// table owner too.
func TestAppendOnly(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pgtest.NewDatabase(t), Options{Signer: storetest.NewSigner(t), CheckpointEvery: 1})
	defer s.Close()
	if err := s.Append(ctx, &audit.Record{Kind: audit.KindDecision, Tenant: "t", Agent: "a"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"UPDATE audit_records SET agent = 'x'",
		"DELETE FROM audit_records",
		"TRUNCATE audit_records CASCADE",
		"UPDATE audit_checkpoints SET hash = 'x'",
		"DELETE FROM audit_checkpoints",
		"TRUNCATE audit_checkpoints",
	} {
		_, err := s.pool.Exec(ctx, q)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || !strings.Contains(pgErr.Message, "append-only") {
			t.Errorf("%s: %v, want an append-only error", q, err)
		}
	}
}

// TestConcurrentOpen: replicas starting at once on an empty database
// migrate it once (the advisory lock), and all open.
func TestConcurrentOpen(t *testing.T) {
	db := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), db, nil)
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	names, err := Migrate(context.Background(), db, true, nil)
	if err != nil || len(names) != 0 {
		t.Fatalf("pending after open: %v %v", names, err)
	}
}

func TestMigrateDryRun(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDatabase(t)
	names, err := Migrate(ctx, db, true, nil)
	if err != nil || len(names) == 0 || names[0] != "0001_init.sql" {
		t.Fatalf("dry run: %v %v", names, err)
	}
	if names2, _ := Migrate(ctx, db, true, nil); len(names2) != len(names) {
		t.Fatalf("dry run applied something: %v", names2)
	}
	if applied, err := Migrate(ctx, db, false, nil); err != nil || len(applied) != len(names) {
		t.Fatalf("migrate: %v %v", applied, err)
	}
	if again, err := Migrate(ctx, db, false, nil); err != nil || len(again) != 0 {
		t.Fatalf("second migrate: %v %v", again, err)
	}
}

// TestBadURL: errors name the problem, never the password.
func TestBadURL(t *testing.T) {
	for _, db := range []string{
		"postgres://warden:s3cret-pw@127.0.0.1:1/warden?connect_timeout=1",
		"postgres://warden:s3cret-pw@[::1/warden",
		"mysql://warden:s3cret-pw@host/db",
	} {
		_, err := Open(context.Background(), db, nil)
		if err == nil {
			t.Errorf("%s: opened", Redact(db))
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// TestEvents: every kind of change is announced to subscribers.
func TestEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := pgtest.NewDatabase(t)
	a, b := openTest(t, db, Options{}), openTest(t, db, Options{})
	defer a.Close()
	defer b.Close()
	events := make(chan store.Event, 100)
	done := make(chan struct{})
	go func() { defer close(done); b.Subscribe(ctx, func(e store.Event) { events <- e }) }()
	defer func() { cancel(); <-done }()
	// Wait until the listener is up: a kill is announced only once it
	// listens, so repeat until one arrives.
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("no kill event within 20s")
		}
		if _, err := a.Kill(ctx, "t", "*", "x", "y"); err != nil {
			t.Fatal(err)
		}
		if e := waitEvent(t, events, store.EventKill, 200); e != nil {
			break
		}
	}
	if _, _, err := a.ApplyConfig(ctx, store.ConfigVersion{Version: "abcd", Files: map[string]string{}}, "x"); err != nil {
		t.Fatal(err)
	}
	if waitEvent(t, events, store.EventConfig, 5000) == nil {
		t.Fatal("no config event")
	}
}

func waitEvent(t *testing.T, ch <-chan store.Event, kind string, ms int) *store.Event {
	t.Helper()
	timeout := make(chan struct{})
	go func() { <-time.After(time.Duration(ms) * time.Millisecond); close(timeout) }()
	for {
		select {
		case e := <-ch:
			if e.Kind == kind {
				return &e
			}
		case <-timeout:
			return nil
		}
	}
}

// TestTamper: whoever gets past the append-only triggers (the table owner
// can disable them) is caught by verification.
func TestTamper(t *testing.T) {
	ctx := context.Background()
	signer := storetest.NewSigner(t)
	for _, tc := range []struct {
		name    string
		sql     string
		wantSeq int64
	}{
		{"changed column", "UPDATE audit_records SET agent = 'someone-else' WHERE seq = 7", 7},
		{"changed body", "UPDATE audit_records SET body = replace(body, '\"github\"', '\"gitlab\"') WHERE seq = 3", 3},
		{"deleted record", "DELETE FROM audit_records WHERE seq = 12", 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, pgtest.NewDatabase(t), Options{Signer: signer, CheckpointEvery: 5})
			defer s.Close()
			for i := range 20 {
				if err := s.Append(ctx, &audit.Record{Kind: audit.KindDecision, Tenant: "t", Agent: "a", Decision: "ALLOW", Connector: "github", CallID: fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.VerifyAudit(ctx, signer.Public()); err != nil {
				t.Fatalf("before: %v", err)
			}
			if _, err := s.pool.Exec(ctx, "ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.pool.Exec(ctx, tc.sql); err != nil {
				t.Fatal(err)
			}
			_, err := s.VerifyAudit(ctx, signer.Public())
			var ve *audit.VerifyError
			if !errors.As(err, &ve) || ve.Seq != tc.wantSeq {
				t.Fatalf("verify: %v, want a VerifyError at seq %d", err, tc.wantSeq)
			}
		})
	}
}

// TestEventsAfterRestart: when the database restarts, the subscriber is
// told to resync and then gets events again, without a restart of its own.
func TestEventsAfterRestart(t *testing.T) {
	pg, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		t.Fatalf("PostgreSQL for this test: %v", err)
	}
	defer pg.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	db := pg.NewDatabase(t)
	s := openTest(t, db, Options{})
	defer s.Close()
	events := make(chan store.Event, 100)
	done := make(chan struct{})
	go func() { defer close(done); s.Subscribe(ctx, func(e store.Event) { events <- e }) }()
	defer func() { cancel(); <-done }()
	kill := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := s.Kill(ctx, "t", "*", "x", "y"); err == nil {
				if e := waitEvent(t, events, store.EventKill, 200); e != nil {
					return
				}
			}
		}
		t.Fatal("no kill event within 20s")
	}
	kill()
	if err := pg.StopServer(); err != nil {
		t.Fatal(err)
	}
	if err := pg.StartServer(); err != nil {
		t.Fatal(err)
	}
	if waitEvent(t, events, store.EventResync, 10_000) == nil {
		t.Fatal("no resync event after the restart")
	}
	kill()
}
