package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigVersions: apply is idempotent per hash, rollback steps back
// like undo (not back and forth), --to names any version by prefix, and
// every change is one activation.
func TestConfigVersions(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if live, err := s.LiveConfig(ctx); err != nil || live != "" {
		t.Fatalf("live on an empty store: %q %v", live, err)
	}
	if _, _, err := s.RollbackConfig(ctx, "", "x"); !errors.Is(err, ErrNoLive) {
		t.Fatalf("rollback with nothing live: %v, want ErrNoLive", err)
	}
	a, b, c := strings.Repeat("a", 64), "ab"+strings.Repeat("b", 62), strings.Repeat("c", 64)
	apply := func(v string, wantCreated, wantActivated bool) {
		t.Helper()
		created, activated, err := s.ApplyConfig(ctx, ConfigVersion{Version: v, Files: map[string]string{"w.yaml": "kind: agent\n"}, Author: "alice", Message: "m " + v[:1]}, "alice")
		if err != nil || created != wantCreated || activated != wantActivated {
			t.Fatalf("apply %s: created %v activated %v err %v; want %v %v", v[:4], created, activated, err, wantCreated, wantActivated)
		}
	}
	live := func(want string) {
		t.Helper()
		if got, err := s.LiveConfig(ctx); err != nil || got != want {
			t.Fatalf("live: %.4s %v, want %.4s", got, err, want)
		}
	}
	apply(a, true, true)
	apply(a, false, false) // already live
	apply(b, true, true)
	apply(c, true, true)
	live(c)

	for _, step := range []struct{ to, from, target string }{
		{"", c, b},  // undo c
		{"", b, a},  // undo b: not back to c
		{"c", a, c}, // --to by prefix
		{"", c, a},  // undo the --to
	} {
		from, target, err := s.RollbackConfig(ctx, step.to, "bob")
		if err != nil || from != step.from || target != step.target {
			t.Fatalf("rollback --to %q: %.4s → %.4s %v; want %.4s → %.4s", step.to, from, target, err, step.from, step.target)
		}
		live(step.target)
	}
	if _, _, err := s.RollbackConfig(ctx, "", "bob"); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("rollback past the first version: %v, want ErrNoPrevious", err)
	}
	if _, _, err := s.RollbackConfig(ctx, "a", "bob"); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("ambiguous prefix: %v", err)
	}
	if _, _, err := s.RollbackConfig(ctx, "d", "bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown prefix: %v", err)
	}
	if _, err := s.ConfigVersion(ctx, "'; drop"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("non-hex prefix: %v", err)
	}
	// Applying a stored version again makes it live without a new row.
	apply(b, false, true)
	vs, err := s.ConfigVersions(ctx)
	if err != nil || len(vs) != 3 {
		t.Fatalf("versions: %v %v", vs, err)
	}
	for _, v := range vs {
		if v.Live != (v.Version == b) {
			t.Errorf("version %.4s live %v", v.Version, v.Live)
		}
	}
	cv, err := s.ConfigVersion(ctx, "ab")
	if err != nil || cv.Version != b || cv.Files["w.yaml"] != "kind: agent\n" || cv.Author != "alice" || !cv.Live {
		t.Fatalf("version ab: %+v %v", cv, err)
	}
}
