package app_test

// The console's admin pages end to end in headless Chromium: an admin
// signs in, reads the dashboard's numbers after a few calls, opens the
// agents page and kills an agent with the button; the agent's next call,
// within a second, is refused "killed by admin:root", and the kill is in
// the audit trail exactly as `warden kill` writes it, with trigger web.

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

func TestConsoleKillInBrowser(t *testing.T) {
	ctx := browser(t, 30*time.Second)
	e := aprSetup(t, 0)

	// A few calls: two run, one waits for a human.
	for _, order := range []string{"d1", "d2"} {
		if code, m := e.do("POST", "/v1/calls", e.agent, map[string]any{"connector": "pay", "action": "payout", "args": map[string]any{"order": order, "amount": 1}}); code != http.StatusOK {
			t.Fatalf("payout %s: %d %v", order, code, m)
		}
	}
	e.pending(e.agent, "refund", "d3", nil)

	id := func(s string) chromedp.ID { return chromedp.ID(s) }
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(id("token")),
		chromedp.SendKeys(id("token"), e.tokens["admin"]),
		chromedp.Click(id("signin")),
		chromedp.WaitVisible(id("calls-hour")), // an admin lands on the dashboard
	)
	if err != nil {
		t.Fatalf("sign in as admin: %v", err)
	}
	if n, err := strconv.Atoi(text(t, ctx, id("calls-hour"))); err != nil || n < 3 {
		t.Errorf("calls in the last hour: %q, want at least 3", text(t, ctx, id("calls-hour")))
	}
	if got := text(t, ctx, id("volume-hour")); strings.Contains(got, "No calls") {
		t.Errorf("call volume chart: %q, want the calls in its last column", got)
	}
	if got := text(t, ctx, id("decisions-hour")); !strings.Contains(got, "ALLOW") || !strings.Contains(got, "REQUIRE_APPROVAL") {
		t.Errorf("decisions chart: %q, want ALLOW and REQUIRE_APPROVAL bars", got)
	}
	if got := text(t, ctx, id("errors-hour")); !strings.Contains(got, "pay") || !strings.Contains(got, "0% (0 of 2)") {
		t.Errorf("error rate chart: %q, want pay at 0%% (0 of 2)", got)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(id("nav-agents")),
		chromedp.WaitVisible(id("kill-default-bot")),
	)
	if err != nil {
		t.Fatalf("open the agents page: %v", err)
	}
	row := text(t, ctx, id("agent-default-bot"))
	if !strings.Contains(row, "test@example.com") || !strings.Contains(row, "running") {
		t.Errorf("agent row: %q, want its owner and running", row)
	}
	if got := text(t, ctx, id("version")); len(got) != 12 {
		t.Errorf("live version: %q, want a 12-character hash", got)
	}

	err = chromedp.Do(ctx,
		chromedp.SendKeys(id("reason-default-bot"), "runaway loop"),
		chromedp.Click(id("kill-default-bot")),
		chromedp.WaitVisible(id("flash")),
	)
	if err != nil {
		t.Fatalf("kill: %v", err)
	}
	killed := time.Now()
	if got := text(t, ctx, id("flash")); !strings.Contains(got, "killed default/bot by admin:root: runaway loop") {
		t.Errorf("flash after kill: %q", got)
	}
	if got := text(t, ctx, id("agent-default-bot")); !strings.Contains(got, "killed by admin:root") {
		t.Errorf("agent row after kill: %q, want killed by admin:root", got)
	}

	// The agent's next call, within a second, is refused by the kill switch
	// (the server's kill-switch cache lets an earlier answer live 500 ms).
	var code int
	var m map[string]any
	for {
		code, m = e.do("POST", "/v1/calls", e.agent, map[string]any{"connector": "pay", "action": "payout", "args": map[string]any{"order": "k1", "amount": 1}})
		if code == http.StatusForbidden || time.Since(killed) > time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if reason, _ := m["reason"].(string); code != http.StatusForbidden || !strings.Contains(reason, "killed by admin:root") {
		t.Fatalf("the agent's call after the kill (%v later): %d %v, want 403 killed by admin:root", time.Since(killed), code, m)
	}
	if took := time.Since(killed); took > time.Second {
		t.Errorf("the kill took %v to take effect, want within a second", took)
	}
	if n := e.up.count("/payouts/k1"); n != 0 {
		t.Errorf("the upstream saw %d payouts after the kill", n)
	}

	// Audited as the CLI audits it, with the admin's identity and channel web.
	st, err := sqlite.Open(context.Background(), e.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.AuditRecords(context.Background(), sqlite.AuditFilter{Agent: "bot"})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range recs {
		if r.Kind == "kill" {
			found = r.Tenant == "default" && r.Trigger == "web:admin:root" && r.Reason == "killed default/bot by admin:root: runaway loop"
			if !found {
				t.Errorf("kill record: %+v", r)
			}
		}
	}
	if !found {
		t.Error("no kill record in the audit trail")
	}

	// Revive from the same row.
	err = chromedp.Do(ctx,
		chromedp.Click(id("revive-default-bot")),
		chromedp.WaitVisible(id("kill-default-bot")),
	)
	if err != nil {
		t.Fatalf("revive: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		code, m = e.do("POST", "/v1/calls", e.agent, map[string]any{"connector": "pay", "action": "payout", "args": map[string]any{"order": "k2", "amount": 1}})
		if code == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != http.StatusOK {
		t.Fatalf("call after revive: %d %v", code, m)
	}
}
