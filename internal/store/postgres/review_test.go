package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/postgres/pgtest"
	"github.com/warden-dev/warden/internal/store/storetest"
)

// slowCommit makes the COMMIT of a record of agent 'slow' take 3s (a
// deferred trigger that ignores cancel requests); with rename, the
// transaction also stops calling itself warden.
func slowCommit(t *testing.T, s *Store, rename bool) {
	t.Helper()
	set := ""
	if rename {
		set = "PERFORM set_config('application_name', 'renamed', true);"
	}
	if _, err := s.pool.Exec(context.Background(), `CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		DECLARE t0 timestamptz := clock_timestamp();
		BEGIN IF NEW.agent = 'slow' THEN `+set+`
		  WHILE clock_timestamp() < t0 + interval '3 seconds' LOOP
		    BEGIN PERFORM pg_sleep(0.1); EXCEPTION WHEN query_canceled THEN NULL; END;
		  END LOOP;
		END IF; RETURN NULL; END; $$;
		CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON audit_records DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW EXECUTE FUNCTION slow_commit();`); err != nil {
		t.Fatal(err)
	}
}

// TestUnknownCommitOutcome: a COMMIT that outlasts the commit deadline is
// in doubt; the answer Append gives must match the trail once the
// transaction has ended. Renamed: the backend cannot be told apart, so
// the check waits for the transaction (it lands: success). Otherwise the
// hung backend is terminated (it does not land: failure).
func TestUnknownCommitOutcome(t *testing.T) {
	for _, rename := range []bool{true, false} {
		t.Run(fmt.Sprint("renamed=", rename), func(t *testing.T) {
			ctx := context.Background()
			s := openTest(t, pgtest.NewDatabase(t), Options{commitTimeout: 2 * time.Second})
			defer s.Close()
			slowCommit(t, s, rename)
			r := &audit.Record{Kind: audit.KindDecision, Tenant: "t", Agent: "slow"}
			err := s.Append(ctx, r)
			time.Sleep(3 * time.Second) // past the end of the slow transaction
			recs, qerr := s.AuditRecords(ctx, store.AuditFilter{Agent: "slow"})
			if qerr != nil {
				t.Fatal(qerr)
			}
			t.Logf("append: %v; records in the trail: %d", err, len(recs))
			if err != nil && len(recs) != 0 {
				t.Errorf("append reported %v, but its record is in the trail", err)
			}
			if err == nil && len(recs) != 1 {
				t.Errorf("append succeeded, but its record is not in the trail")
			}
			if rename && err != nil {
				t.Errorf("append: %v, want success (the check waits for the transaction)", err)
			}
			if !rename && (err == nil || errors.Is(err, ErrCommitUnknown) || !strings.Contains(err.Error(), "not in the trail")) {
				t.Errorf("append: %v, want a commit failure (the hung backend was terminated)", err)
			}
			// The chain goes on.
			if err := s.Append(ctx, &audit.Record{Kind: audit.KindDecision, Tenant: "t", Agent: "next"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.VerifyAudit(ctx, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestUnknownCommitDatabaseDown: the database goes away during COMMIT and
// stays away beyond the retry window: the caller is told the outcome is
// unknown, not that the append failed.
func TestUnknownCommitDatabaseDown(t *testing.T) {
	pg, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		t.Fatalf("PostgreSQL for this test: %v", err)
	}
	defer pg.Stop()
	ctx := context.Background()
	s := openTest(t, pg.NewDatabase(t), Options{commitTimeout: time.Second})
	defer s.Close()
	slowCommit(t, s, false)
	res := make(chan error, 1)
	go func() { res <- s.Append(ctx, &audit.Record{Kind: audit.KindDecision, Tenant: "t", Agent: "slow"}) }()
	time.Sleep(500 * time.Millisecond) // in the slow COMMIT
	if err := pg.StopServer(); err != nil {
		t.Fatal(err)
	}
	err = <-res
	if !errors.Is(err, ErrCommitUnknown) || !strings.Contains(err.Error(), "outcome unknown") {
		t.Errorf("append: %v, want ErrCommitUnknown", err)
	}
	if err := pg.StartServer(); err != nil {
		t.Fatal(err)
	}
}

// TestConflictBatches: batches with refused changes in the middle, on two
// replicas with checkpoints: the chain stays contiguous and verifies.
func TestConflictBatches(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDatabase(t)
	signer := storetest.NewSigner(t)
	var ss []*Store
	for range 2 {
		ss = append(ss, openTest(t, db, Options{Signer: signer, CheckpointEvery: 3}))
	}
	now := time.Now().UTC()
	for i := range 5 {
		st := &dispatch.State{ID: fmt.Sprintf("c%d", i), Tenant: "acme", Agent: "bot", Status: dispatch.StatusApproved,
			CreatedAt: now, UpdatedAt: now, Args: json.RawMessage(`{}`)}
		if err := ss[0].Commit(ctx, &audit.Record{Kind: audit.KindDecision, CallID: st.ID}, st); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := ss[w%2]
			id := fmt.Sprintf("c%d", w%5)
			cur, err := s.CallState(ctx, id)
			if err != nil {
				t.Error(err)
				return
			}
			if w%3 == 0 {
				if err := s.Append(ctx, &audit.Record{Kind: audit.KindDecision, Agent: "plain"}); err != nil {
					t.Error(err)
				}
				return
			}
			cur.PrevStatus = cur.Status
			cur.Reason = fmt.Sprint(w)
			err = s.Commit(ctx, &audit.Record{Kind: audit.KindApproval, CallID: id}, cur)
			if err != nil && !errors.Is(err, dispatch.ErrConflict) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, s := range ss {
		s.Close()
	}
	s := openTest(t, db, Options{})
	defer s.Close()
	if _, err := s.VerifyAudit(ctx, signer.Public()); err != nil {
		t.Fatal(err)
	}
}

// TestLargeQueue: more appends than one batch takes all commit, in order.
func TestLargeQueue(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pgtest.NewDatabase(t), Options{})
	defer s.Close()
	const n = 3*maxBatch + 7
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Append(ctx, &audit.Record{Kind: audit.KindDecision, Agent: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	res, err := s.VerifyAudit(ctx, nil)
	if err != nil || res.LastSeq != n {
		t.Fatalf("verify: %+v %v, want %d records", res, err, n)
	}
}

// asRole returns db's URL with another user.
func asRole(db, role string) string {
	u, _ := url.Parse(db)
	u.User = url.User(role)
	return u.String()
}

// TestAppRole: the two-role deployment of docs/scale-out.md. The owner
// migrates; the application role, with exactly the documented grants (and
// no CREATE on the schema, PostgreSQL 15's default), opens, commits calls,
// appends, and may not change the trail. With a migration pending it is
// told to run warden migrate as the owner.
func TestAppRole(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDatabase(t)
	owner := openTest(t, db, Options{})
	defer owner.Close()
	role := "warden_app_" + strings.ReplaceAll(strings.TrimPrefix(mustPath(t, db), "/"), "-", "_")
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"GRANT USAGE ON SCHEMA public TO " + role,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + role,
		"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO " + role,
		"REVOKE UPDATE, DELETE, TRUNCATE ON audit_records, audit_checkpoints FROM " + role,
	} {
		if _, err := owner.pool.Exec(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	t.Cleanup(func() {
		owner.pool.Exec(context.Background(), "DROP OWNED BY "+role) //nolint:errcheck // best effort
		owner.pool.Exec(context.Background(), "DROP ROLE "+role)     //nolint:errcheck // best effort
	})
	app := asRole(db, role)
	s, err := Open(ctx, app, nil)
	if err != nil {
		t.Fatalf("open as the application role: %v", err)
	}
	defer s.Close()
	now := time.Now().UTC()
	st := &dispatch.State{ID: "c1", Tenant: "acme", Agent: "bot", Status: dispatch.StatusRunning, CreatedAt: now, UpdatedAt: now, Args: json.RawMessage(`{}`)}
	if err := s.Commit(ctx, &audit.Record{Kind: audit.KindDecision, CallID: st.ID}, st); err != nil {
		t.Fatal(err)
	}
	st.PrevStatus, st.Status = st.Status, dispatch.StatusSucceeded
	if err := s.Commit(ctx, &audit.Record{Kind: audit.KindOutcome, CallID: st.ID}, st); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, &audit.Record{Kind: audit.KindDecision, Agent: "a"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"UPDATE audit_records SET agent = 'x'", "DELETE FROM audit_records", "DELETE FROM audit_checkpoints"} {
		_, err := s.pool.Exec(ctx, q)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s as the application role: %v, want permission denied", q, err)
		}
	}
	if names, err := Migrate(ctx, app, true, nil); err != nil || len(names) != 0 {
		t.Errorf("migrate --dry-run as the application role: %v %v, want nothing pending", names, err)
	}

	// A newer warden (a pending migration) started with the application role.
	if _, err := owner.pool.Exec(ctx, "DELETE FROM schema_migrations WHERE version = 2"); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, app, nil)
	if err == nil || !strings.Contains(err.Error(), "1 migration pending") || !strings.Contains(err.Error(), "warden migrate") {
		t.Errorf("open as the application role with a migration pending: %v, want a pointer to warden migrate", err)
	}
}

func mustPath(t *testing.T, db string) string {
	t.Helper()
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

// TestOldReplicaApprovalID: a replica still running the previous version
// writes calls without approval_id (it was generated); the trigger of
// migration 0002 fills it in, and leaves it NULL for a body jsonb refuses.
func TestOldReplicaApprovalID(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pgtest.NewDatabase(t), Options{})
	defer s.Close()
	ins := `INSERT INTO calls (id, tenant, agent, status, created_at, updated_at, args, body) VALUES ($1, 't', 'a', 'pending', 'x', 'x', '{}', $2)`
	if _, err := s.pool.Exec(ctx, ins, "old1", `{"id":"old1","approval":{"id":"apr_old"}}`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, ins, "old2", `{"id":"old2","result":"\u0000","approval":{"id":"apr_nul"}}`); err != nil {
		t.Fatalf("old replica insert of a body with a NUL: %v", err)
	}
	if st, err := s.CallByApproval(ctx, "apr_old"); err != nil || st.ID != "old1" {
		t.Errorf("call by approval: %+v %v", st, err)
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:s3cret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db?password=s3cret&sslmode=disable", "postgres://u@h/db?password=xxxxx&sslmode=disable"},
		{"postgresql://u@h/db?sslmode=require&sslpassword=s3cret", "postgresql://u@h/db?sslmode=require&sslpassword=xxxxx"},
		{"postgres://u@h/db?Password=s3cret", "postgres://u@h/db?Password=xxxxx"},
		{"postgres://u@h/db?pass%77ord=s3cret", "postgres://u@h/db?password=xxxxx"},
		{"postgres://u@h/db?a=1;password=s3cret", "postgres://u@h/db?a=1;password=xxxxx"},
		{"postgres://u:a@b@h/db?password=s3cret#s3cret", "postgres://u:xxxxx@h/db?password=xxxxx"},
		{"postgres://u:p%ZZ@h/db?password=s3cret", "postgres://(unparsable URL)"},
		{"postgres://u@h/db?sslmode=disable", "postgres://u@h/db?sslmode=disable"},
		{"host=h user=u password=s3cret dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password = 's3 cret' sslpassword=s3cret", "host=h password = xxxxx sslpassword=xxxxx"},
	} {
		got := Redact(tc.in)
		if got != tc.want && !(strings.Contains(tc.in, "a@b") && !strings.Contains(got, "s3cret")) {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "s3cret") || strings.Contains(got, "s3 cret") {
			t.Errorf("Redact(%q) = %q: the password shows", tc.in, got)
		}
	}
	_, err := Open(context.Background(), "postgres://u@127.0.0.1:1/db?password=s3cret&sslmode=disable&connect_timeout=1", nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("open error: %v, want one without the password", err)
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"s3cret", "a b&c=d", "x%41y", "'q'", "p;w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pw string) {
		if len(pw) < 4 {
			return
		}
		forms := []string{pw, url.QueryEscape(pw), url.PathEscape(pw), strings.TrimPrefix(url.UserPassword("u", pw).String(), "u:")}
		dsns := func(p string) []string {
			return []string{
				"postgres://" + url.UserPassword("u", p).String() + "@h:5432/db?sslmode=disable",
				"postgres://u@h/db?password=" + url.QueryEscape(p) + "&sslmode=disable",
				"postgres://u@h/db?sslpassword=" + url.QueryEscape(p),
				"postgres://u@h/db?x=1;password=" + url.QueryEscape(p),
				"host=h user=u password=" + p + " dbname=d",
			}
		}
		blank := dsns("")
		for i, dsn := range dsns(pw) {
			out := Redact(dsn)
			for _, f := range forms {
				if f == "" || strings.Contains(Redact(blank[i]), f) || strings.Contains(blank[i], f) {
					continue // f is in the rest of the string anyway
				}
				if i == 4 && strings.ContainsAny(pw, " \t\n\v\f\r'\\") {
					continue // not one bare libpq value
				}
				if strings.Contains(out, f) {
					t.Fatalf("Redact(%q) = %q shows the password %q", dsn, out, f)
				}
			}
		}
	})
}

// TestListenIdle: a quiet LISTEN connection is kept (no resync) as long
// as it answers, and events still arrive on it.
func TestListenIdle(t *testing.T) {
	old := listenIdle
	listenIdle = 200 * time.Millisecond
	defer func() { listenIdle = old }()
	ctx, cancel := context.WithCancel(context.Background())
	s := openTest(t, pgtest.NewDatabase(t), Options{})
	defer s.Close()
	events := make(chan store.Event, 100)
	done := make(chan struct{})
	go func() { defer close(done); s.Subscribe(ctx, func(e store.Event) { events <- e }) }()
	defer func() { cancel(); <-done }()
	time.Sleep(time.Second) // a few idle periods
	if _, err := s.Kill(ctx, "t", "*", "x", "y"); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e := <-events:
			if e.Kind == store.EventResync {
				t.Fatal("resync after an idle period")
			}
			if e.Kind == store.EventKill {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no kill event")
		}
	}
}
