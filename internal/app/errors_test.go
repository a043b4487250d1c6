package app_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warden-dev/warden/internal/client"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// TestUpstreamErrorsStayInside: when the upstream cannot be reached, the
// agent is told so in its own terms; the upstream's address and Go's error
// text go to the audit record only.
func TestUpstreamErrorsStayInside(t *testing.T) {
	up := &upstream{Server: &httptest.Server{URL: "http://127.0.0.1:1"}} // nothing listens on port 1
	cfgDir, db := setup(t, up)
	s := runInProcess(t, cfgDir, db)
	st := openStore(t, db)
	tok := agentToken(t, st)
	res, err := client.New(s.URL, tok).Call(context.Background(), client.CallRequest{Connector: "up", Action: "get", Args: map[string]any{"id": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "failed" || res.Error != "the upstream could not be reached" {
		t.Fatalf("call = %+v; want failed with a plain message", res)
	}
	recs, err := st.AuditRecords(context.Background(), sqlite.AuditFilter{CallID: res.ID})
	if err != nil || len(recs) != 2 {
		t.Fatalf("records: %d, %v", len(recs), err)
	}
	if e := recs[1].Error; !strings.Contains(e, "the upstream could not be reached") || !strings.Contains(e, "127.0.0.1:1") {
		t.Errorf("outcome record error = %q; want the agent's message and the cause", e)
	}
}
