package store_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoBackendImports: the store package names what warden needs from a
// store; it must not depend on a backend, SQL or a driver (the backends
// import it, and internal/app picks one).
func TestNoBackendImports(t *testing.T) {
	const module = "github.com/warden-dev/warden"
	out, err := exec.Command("go", "list", "-deps", module+"/internal/store").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range []string{"database/sql", "modernc.org/sqlite", "github.com/jackc/pgx", module + "/internal/store/", module + "/internal/app"} {
			if dep == f || strings.HasPrefix(dep, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
				t.Errorf("internal/store imports %s", dep)
			}
		}
	}
}
