package arch

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/warden-dev/warden"

// domain packages decide and describe; they never do I/O over the network,
// talk SQL, or know how the program is wired.
var domain = []string{
	"internal/alert",
	"internal/approval",
	"internal/call",
	"internal/condition",
	"internal/config",
	"internal/policy",
	"internal/audit",
	"internal/secret",
	"internal/schema",
	"internal/connector/template",
	"internal/limit",
	"internal/hook",
	"internal/sandbox/egress/allowlist",
	"internal/sandbox/layout",
}

// forbidden are imports no domain package may have, directly or not.
var forbidden = []string{
	"net/http",
	"database/sql",
	"os/exec",
	module + "/internal/app",
	module + "/internal/cli",
	module + "/internal/server",
	module + "/internal/store",
	module + "/internal/dispatch",
	module + "/internal/connector/http",
	"modernc.org/sqlite",
	"github.com/jackc/pgx",
}

func TestDomainImports(t *testing.T) {
	for _, pkg := range domain {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				for _, f := range forbidden {
					if dep == f || strings.HasPrefix(dep, f+"/") {
						t.Errorf("%s imports %s (a domain package must not depend on HTTP, SQL, processes or wiring)", pkg, dep)
					}
				}
			}
		})
	}
}
