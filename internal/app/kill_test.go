package app_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/cli"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// TestKillSwitch: `warden kill` refuses a running server's calls of that
// agent within a second, also an approval given after the kill; `revive`
// lets calls through again. Nothing killed reaches the upstream.
func TestKillSwitch(t *testing.T) {
	e := aprSetup(t, 0)
	callID, aprID := e.pending(e.agent, "refund", "before-kill", nil)

	if code, out, errOut := e.cli("kill", "bot", "--reason", "runaway loop", "--by", "oncall"); code != 0 || !strings.Contains(out, "killed default/bot by oncall: runaway loop") {
		t.Fatalf("kill: %d %q %q", code, out, errOut)
	}
	// Within a second (the kill-switch cache is 500 ms) calls are refused.
	deadline := time.Now().Add(2 * time.Second)
	var code int
	var m map[string]any
	for {
		// Until the cache lets go (at most 500 ms) these may still run.
		code, m = e.do("POST", "/v1/calls", e.agent, map[string]any{"connector": "pay", "action": "payout", "args": map[string]any{"order": "k1", "amount": 1}})
		if code == http.StatusForbidden || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != http.StatusForbidden || !strings.Contains(m["reason"].(string), "killed by oncall") || m["rules"].([]any)[0] != "kill-switch" {
		t.Fatalf("call after kill: %d %v; want 403 by the kill switch", code, m)
	}
	// Another tenant's agent of the same name is not affected.
	if code, m := e.do("POST", "/v1/calls", e.tokens["other-agent"], map[string]any{"connector": "pay", "action": "refund", "args": map[string]any{"order": "o1", "amount": 1}}); code != http.StatusAccepted {
		t.Fatalf("other tenant: %d %v, want 202", code, m)
	}
	// What was pending before the kill does not run: either the sweep has
	// cancelled it already (409 to the approver), or the approval is
	// recorded and the claim refuses to run it.
	if code, m := e.do("POST", "/v1/approvals/"+aprID+"/approve", e.tokens["alice"], map[string]any{"comment": "ok"}); code != http.StatusOK && code != http.StatusConflict {
		t.Fatalf("approve: %d %v", code, m)
	}
	st := e.waitDone(e.agent, callID)
	if st["status"] != "refused" || !strings.Contains(st["reason"].(string), "killed by oncall") {
		t.Fatalf("approved call of a killed agent: %v", st)
	}
	if n := e.up.count("/refunds/before-kill"); n != 0 {
		t.Fatalf("the upstream saw %d requests of a call approved after the kill", n)
	}
	before := e.up.count("/payouts/k1")
	if code, _ := e.do("POST", "/v1/calls", e.agent, map[string]any{"connector": "pay", "action": "payout", "args": map[string]any{"order": "k1", "amount": 1}}); code != http.StatusForbidden || e.up.count("/payouts/k1") != before {
		t.Fatalf("a call after the kill took effect: %d, upstream %d → %d", code, before, e.up.count("/payouts/k1"))
	}

	if code, out, _ := e.cli("revive", "bot", "--by", "oncall"); code != 0 || !strings.Contains(out, "revived default/bot") {
		t.Fatalf("revive: %d %q", code, out)
	}
	deadline = time.Now().Add(2 * time.Second)
	for {
		code, m = e.do("POST", "/v1/calls", e.agent, map[string]any{"connector": "pay", "action": "payout", "args": map[string]any{"order": "k2", "amount": 1}})
		if code == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != http.StatusOK || e.up.count("/payouts/k2") != 1 {
		t.Fatalf("call after revive: %d %v", code, m)
	}
}

// TestKillStopsExecution: a call already executing when its agent is killed
// is stopped within a second, and its outcome record says why.
func TestKillStopsExecution(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	cfgDir, db := setup(t, up)
	srv := runInProcess(t, cfgDir, db)
	st := openStore(t, db)
	tok := agentToken(t, st)

	slow := make(chan callResult, 1)
	go func() {
		r, _ := postCall(context.Background(), &http.Client{Timeout: 30 * time.Second}, srv.URL, tok, "slow", map[string]any{"id": "k"})
		slow <- r
	}()
	select {
	case <-up.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow call never reached the upstream")
	}
	killed := time.Now()
	var out, errOut bytes.Buffer
	if code := cli.Run(context.Background(), []string{"kill", "bot", "--by", "oncall", "--db", db}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("kill: %d %s", code, errOut.String())
	}
	var r callResult
	select {
	case r = <-slow:
	case <-time.After(5 * time.Second):
		t.Fatal("the executing call was not stopped by the kill")
	}
	if d := time.Since(killed); d > 1500*time.Millisecond {
		t.Errorf("stopped %v after the kill; want about a second at most", d)
	}
	if r.Status != "failed" || !strings.Contains(r.raw, "stopped by the kill switch") {
		t.Fatalf("stopped call = %d %s", r.HTTP, r.raw)
	}
	recs, err := st.AuditRecords(context.Background(), sqlite.AuditFilter{CallID: r.ID})
	if err != nil || len(recs) != 2 || recs[1].Outcome != "failed" || !strings.Contains(recs[1].Error, "stopped by the kill switch") {
		t.Fatalf("records = %+v, %v; want a failed outcome naming the kill switch", recs, err)
	}
}
