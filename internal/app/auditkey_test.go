package app_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/audit"
)

// TestServeRefusesAnotherAuditKey: a server whose checkpoint key is not the
// one that signed the chain does not start — its checkpoints would fail
// `warden audit verify` — and says which key it needs.
func TestServeRefusesAnotherAuditKey(t *testing.T) {
	ctx := context.Background()
	cfgDir, db := setup(t, newUpstream(t))
	signer, err := audit.LoadOrCreateKey(app.AuditKeyPath(db))
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, db, nil, signer)
	if err != nil {
		t.Fatal(err)
	}
	rec := &audit.Record{Time: time.Now().UTC(), Tenant: "default", Agent: "a", FrontEnd: audit.FrontEndREST,
		Kind: audit.KindDecision, CallID: "call-1", Connector: "c", Action: "x", Args: []byte(`{}`), Decision: "ALLOW"}
	if err := st.Append(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil { // writes the final, signed checkpoint
		t.Fatal(err)
	}

	other := filepath.Join(t.TempDir(), "other.key")
	err = app.Run(ctx, app.Options{ConfigDir: cfgDir, DB: db, Addr: "127.0.0.1:0", AuditKey: other})
	if err == nil || !strings.Contains(err.Error(), "signed with key id "+signer.KeyID()) {
		t.Fatalf("Run with another audit key = %v; want a refusal naming key id %s", err, signer.KeyID())
	}
}
