package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/warden-dev/warden/internal/store/sqlshared"
)

// openTest opens a Store on path and closes it when the test ends.
func openTest(t testing.TB, path string, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, nil, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawDB opens path the way an attacker or a careless operator would: a
// plain connection, none of the Store's settings (foreign keys off).
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenPaths(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"plain path", filepath.Join(dir, "a.db"), ""},
		{"sqlite URL", "sqlite://" + filepath.Join(dir, "b.db"), ""},
		{"empty", "", "empty"},
		{"empty URL", "sqlite://", "empty"},
		{"memory", ":memory:", "in-memory"},
		{"memory URL", "sqlite://:memory:", "in-memory"},
		{"query parameters", filepath.Join(dir, "c.db") + "?mode=ro", "query parameters"},
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "d.db"), "open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.path, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded, want an error containing %q", tt.path, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	_, err := Open(context.Background(), path, nil, Options{CheckpointEvery: -1, QueueSize: -2})
	if err == nil || !strings.Contains(err.Error(), "checkpoint") || !strings.Contains(err.Error(), "queue") {
		t.Errorf("err = %v, want both problems reported", err)
	}
	if _, err := Open(context.Background(), path, nil, Options{}, Options{}); err == nil {
		t.Error("Open with two Options succeeded")
	}
}

func TestConnectionSettings(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "w.db"), Options{})
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"busy_timeout", "5000"},
		{"foreign_keys", "1"},
	}
	// Several connections at once, so that more than one pooled connection
	// is looked at.
	conns := make([]*sql.Conn, 3)
	for i := range conns {
		c, err := s.DB().Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		for _, tt := range tests {
			var got string
			if err := c.QueryRowContext(context.Background(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("conn %d: PRAGMA %s = %s, want %s", i, tt.pragma, got, tt.want)
			}
		}
	}
}

func TestMigrationsApplyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	for range 3 {
		s, err := Open(context.Background(), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := sqlshared.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	rows, err := db.Query("SELECT version, name FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []migration
	for rows.Next() {
		var m migration
		if err := rows.Scan(&m.Version, &m.Name); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if len(got) != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", len(got), len(ms))
	}
	for i := range ms {
		if got[i].Version != ms[i].Version || got[i].Name != ms[i].Name {
			t.Errorf("row %d = %d %s, want %d %s", i, got[i].Version, got[i].Name, ms[i].Version, ms[i].Name)
		}
	}
}

func TestEmbeddedMigrationsLoad(t *testing.T) {
	ms, err := sqlshared.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("embedded migrations = %v, want at least 0001", ms)
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fs      fstest.MapFS
		want    []string
		wantErr string
	}{
		{"sorted by number", fstest.MapFS{
			"migrations/0010_later.sql":  file("x"),
			"migrations/0002_tokens.sql": file("x"),
			"migrations/0001_audit.sql":  file("x"),
		}, []string{"0001_audit.sql", "0002_tokens.sql", "0010_later.sql"}, ""},
		{"other files ignored", fstest.MapFS{
			"migrations/0001_audit.sql": file("x"),
			"migrations/README.md":      file("x"),
		}, []string{"0001_audit.sql"}, ""},
		{"bad name", fstest.MapFS{"migrations/1_audit.sql": file("x")}, nil, "NNNN"},
		{"upper case", fstest.MapFS{"migrations/0001_Audit.sql": file("x")}, nil, "NNNN"},
		{"version zero", fstest.MapFS{"migrations/0000_nothing.sql": file("x")}, nil, "version"},
		{"duplicate version", fstest.MapFS{
			"migrations/0002_tokens.sql": file("x"),
			"migrations/0002_calls.sql":  file("x"),
		}, nil, "same version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := sqlshared.LoadMigrations(tt.fs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.Name)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("order = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMigrationFailureRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := openTest(t, path, Options{})
	ms, err := sqlshared.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	latest := ms[len(ms)-1].Version
	ms = append(ms,
		migration{Version: latest + 1, Name: "good.sql", SQL: "CREATE TABLE good (x INTEGER)"},
		migration{Version: latest + 2, Name: "bad.sql", SQL: "CREATE TABLE bad (x INTEGER); THIS IS NOT SQL"},
	)
	err = applyMigrations(context.Background(), s.DB(), ms, s.logger)
	if err == nil || !strings.Contains(err.Error(), "bad.sql") {
		t.Fatalf("err = %v, want one naming bad.sql", err)
	}
	var n int
	if err := s.DB().QueryRow("SELECT count(*) FROM sqlite_schema WHERE name IN ('good', 'bad')").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d tables of a failed migration run were left behind", n)
	}
	if err := s.DB().QueryRow("SELECT count(*) FROM schema_migrations WHERE version > ?", latest).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d migrations recorded from a failed run", n)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec("INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', 'x')"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(context.Background(), path, nil)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("err = %v, want the newer schema refused", err)
	}
}

// TestConcurrentOpen opens one new file from many Stores at once, as the
// server and a CLI command might: every Open succeeds and the migrations run
// once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	const n = 8
	errs := make([]error, n)
	stores := make([]*Store, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(context.Background(), path, nil) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open #%d: %v", i, errs[i])
			continue
		}
		stores[i].Close()
	}
	var rows int
	if err := rawDB(t, path).QueryRow("SELECT count(*) FROM schema_migrations").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	ms, _ := sqlshared.LoadMigrations(migrationFiles)
	if rows != len(ms) {
		t.Errorf("schema_migrations has %d rows, want %d", rows, len(ms))
	}
}

// TestWriteTransactionsBeginImmediate: a write transaction holds the write
// lock from BEGIN, so another writer cannot start one; a read-only one does
// not.
func TestWriteTransactionsBeginImmediate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := openTest(t, path, Options{})
	ctx := context.Background()
	other, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tryWrite := func() error {
		c, err := other.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			return err
		}
		_, err = c.ExecContext(ctx, "ROLLBACK")
		return err
	}

	tests := []struct {
		name      string
		opts      *sql.TxOptions
		wantBlock bool
	}{
		{"write transaction", nil, true},
		{"read-only transaction", &sql.TxOptions{ReadOnly: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := s.DB().BeginTx(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			err = tryWrite()
			if blocked := err != nil; blocked != tt.wantBlock {
				t.Errorf("another writer blocked = %v (err %v), want %v", blocked, err, tt.wantBlock)
			}
		})
	}
}
