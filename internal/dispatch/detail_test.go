package dispatch_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/policy"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// detailExecutor succeeds and reports a detail for operators.
type detailExecutor struct{ detail string }

func (e detailExecutor) Execute(context.Context, string, map[string]any) (*dispatch.Outcome, error) {
	return &dispatch.Outcome{Result: map[string]any{"ok": true}, Detail: e.detail}, nil
}

// TestSucceededDetailLogged: a succeeded call's Detail (a kept work
// directory) is logged at Info with the call id, and is not in what the
// agent gets.
func TestSucceededDetailLogged(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := config.Parse([]config.File{{Name: "c.yaml", Data: []byte(limitsConfig)}})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	const detail = "work directory kept at /tmp/x/y"
	d := dispatch.New(dispatch.Options{Store: st, Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		&dispatch.Snapshot{Engine: policy.New(cfg), Executors: map[string]dispatch.Executor{"c": detailExecutor{detail}}})
	p := call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "a"}
	s, err := d.Call(ctx, p, dispatch.Request{Connector: "c", Action: "get", FrontEnd: "rest"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != dispatch.StatusSucceeded {
		t.Fatalf("status = %s %q, want succeeded", s.Status, s.Error)
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `msg="call detail"`) {
			line = l
		}
	}
	for _, want := range []string{"level=INFO", "call=" + s.ID, detail} {
		if !strings.Contains(line, want) {
			t.Errorf("call detail log line %q lacks %q; logs:\n%s", line, want, logs.String())
		}
	}
	if strings.Contains(string(s.Result), "kept") || strings.Contains(s.Error, "kept") {
		t.Errorf("the agent sees the detail: result %s, error %q", s.Result, s.Error)
	}
}
