package app_test

// The web console end to end, in a real headless Chromium driven over the
// DevTools protocol (chromedp): warden runs through app.Run exactly as in
// approvals_test.go; an agent's call waits for a human; the browser signs
// in with an approver token, reads the request's context, comments and
// approves; the agent's long poll returns the result, the upstream saw one
// request and the audit trail names the approver and channel web.

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds the browser. CI installs it (.ci/run); a missing browser
// fails the test there rather than skipping it silently.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	for _, p := range []string{os.Getenv("WARDEN_CHROMIUM"), "/usr/bin/chromium"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("chromium not found: the console test needs Debian's chromium " +
		"(.ci/run installs it: apt-get install -y --no-install-recommends chromium; " +
		"or set WARDEN_CHROMIUM); run with -short to skip it")
	return ""
}

// browser starts a headless Chromium with its own profile and returns a
// chromedp context bounded by timeout.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 1024),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx() // closes the browser
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // start it now: a broken browser fails here, clearly
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// text reads the visible text of the element sel selects.
func text[S chromedp.Selectable](t *testing.T, ctx context.Context, sel S) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("reading the text of %v: %v", sel, err)
	}
	return s
}

func TestConsoleApproveInBrowser(t *testing.T) {
	ctx := browser(t, 30*time.Second)
	e := aprSetup(t, 0)

	// The agent asks for a refund that needs a human, then long-polls.
	callID, aprID := e.pending(e.agent, "refund", "A-17", map[string]any{"run_id": "run-web"})
	type polled struct {
		code int
		m    map[string]any
	}
	done := make(chan polled, 1)
	go func() {
		code, m := e.do("GET", "/v1/calls/"+callID+"?wait=30s", e.agent, nil)
		done <- polled{code, m}
	}()

	id := func(s string) chromedp.ID { return chromedp.ID(s) }
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"), // not signed in: redirected to the sign-in page
		chromedp.WaitVisible(id("token")),
		chromedp.SendKeys(id("token"), e.tokens["alice"]),
		chromedp.Click(id("signin")),
		chromedp.WaitVisible(id("approval-"+aprID)),
	)
	if err != nil {
		t.Fatalf("sign in and open the inbox: %v", err)
	}
	card := text(t, ctx, id("approval-"+aprID))
	who := text(t, ctx, chromedp.CSS(".who"))
	for _, want := range []string{"bot", "pay.refund", "external", `"order": "A-17"`, `"amount": 500`,
		"0 of 1", "Requested", "Expires", callID} {
		if !strings.Contains(card, want) {
			t.Errorf("the pending approval's card lacks %q:\n%s", want, card)
		}
	}
	if who != "approver:alice" {
		t.Errorf("signed in as %q, want approver:alice", who)
	}
	select {
	case p := <-done:
		t.Fatalf("the agent's long poll returned before any approval: %d %v", p.code, p.m)
	default:
	}

	const comment = "refund checked against ticket 4411"
	err = chromedp.Do(ctx,
		chromedp.SendKeys(id("comment-"+aprID), comment),
		chromedp.Click(chromedp.CSS("#approval-"+aprID+" button.approve")),
		chromedp.WaitVisible(id("flash")),
		chromedp.WaitVisible(id("empty")), // the inbox is empty now
	)
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	flash := text(t, ctx, id("flash"))
	if !strings.Contains(flash, "ran and succeeded") {
		t.Errorf("after approving: flash %q, want it to say the call ran and succeeded", flash)
	}

	select {
	case p := <-done:
		if p.code != http.StatusOK || p.m["status"] != "succeeded" {
			t.Fatalf("agent's long poll: got %d %v, want 200 succeeded", p.code, p.m)
		}
		res, _ := p.m["result"].(map[string]any)
		body, _ := res["body"].(map[string]any)
		if body == nil || body["path"] != "/refunds/A-17" {
			t.Errorf("agent's result: got %v, want the upstream's answer", p.m["result"])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's long poll did not return after the approval")
	}
	if n := e.up.count("/refunds/A-17"); n != 1 {
		t.Errorf("upstream saw %d refunds, want exactly 1", n)
	}

	recs := e.records(callID)
	if got, want := kinds(recs), "decision,approval,started,outcome"; got != want {
		t.Fatalf("audit kinds: got %s, want %s", got, want)
	}
	a := recs[1].Approval
	if a == nil || a.ID != aprID || a.Approver != "approver:alice" || a.Channel != "web" || a.Comment != comment || a.DecidedAt.IsZero() {
		t.Errorf("approval record: got %+v, want approver:alice via web with the comment and a time", a)
	}
	if out := recs[3]; out.Outcome != "succeeded" || out.Approval == nil || out.Approval.Channel != "web" {
		t.Errorf("outcome record: got outcome %q approval %+v, want succeeded approved via web", out.Outcome, out.Approval)
	}

	// History shows the decision; signing out ends the session.
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/console/history"),
		chromedp.WaitVisible(id("history-"+aprID)),
	)
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	history := text(t, ctx, id("history-"+aprID))
	err = chromedp.Do(ctx,
		chromedp.Click(id("signout")),
		chromedp.WaitVisible(id("token")),
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(id("token")),
	)
	if err != nil {
		t.Fatalf("sign out: %v", err)
	}
	if want := "approved by approver:alice via web"; !strings.Contains(history, want) || !strings.Contains(history, comment) {
		t.Errorf("history row: %q, want %q and the comment", history, want)
	}
}
