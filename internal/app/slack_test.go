package app_test

// Slack approvals end to end: app.Run with a `kind: approvals` document
// whose base_url points at a local stand-in for Slack's Web API; clicks are
// signed the way Slack signs them and posted to /slack/interactions; the
// stand-in also serves the response_url the updates go to.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/notify"
)

const (
	slackTestToken    = "xoxb-1234567890-abcdefghijklmnop"
	slackTestSecret   = "8f742231b10e8888abcd99yyyzzz85a5"
	webhookTestSecret = "whsec-0123456789abcdef"
)

// slackStandin is a stand-in for Slack: chat.postMessage and response_urls.
type slackStandin struct {
	srv      *httptest.Server
	posts    chan slackPost // chat.postMessage calls
	replies  chan slackPost // response_url calls
	hooks    chan slackPost // webhook deliveries whose signature verified
	mu       sync.Mutex
	failNext int // answer this many postMessages with HTTP 500
}

type slackPost struct {
	path, auth string
	body       map[string]any
	raw        string
}

func newSlackStandin(t *testing.T) *slackStandin {
	s := &slackStandin{posts: make(chan slackPost, 100), replies: make(chan slackPost, 100), hooks: make(chan slackPost, 100)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p slackPost
		p.path, p.auth = r.URL.Path, r.Header.Get("Authorization")
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &p.body)
		p.raw = string(raw)
		switch {
		case r.URL.Path == "/hook":
			// A webhook receiver: verify before trusting anything.
			if !notify.VerifyWebhook([]byte(webhookTestSecret), raw, r.Header.Get(notify.HeaderSignature)) {
				http.Error(w, "bad signature", http.StatusUnauthorized)
				return
			}
			s.hooks <- p
		case r.URL.Path == "/api/chat.postMessage":
			s.mu.Lock()
			fail := s.failNext > 0
			if fail {
				s.failNext--
			}
			s.mu.Unlock()
			if fail {
				http.Error(w, "oops", http.StatusInternalServerError)
				return
			}
			s.posts <- p
			fmt.Fprint(w, `{"ok":true,"channel":"C0TEST","ts":"1700000000.000100"}`)
		case strings.HasPrefix(r.URL.Path, "/respond/"):
			s.replies <- p
			fmt.Fprint(w, "ok")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func next(t *testing.T, ch chan slackPost, what string) slackPost {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
		return slackPost{}
	}
}

// slackSetup is aprSetup with Slack configured: alice, bob and nora (whose
// token only covers the notes connector) and ghost (no token) are mapped.
func slackSetup(t *testing.T) (*aprEnv, *slackStandin) {
	t.Setenv("WARDEN_TEST_SLACK_TOKEN", slackTestToken)
	t.Setenv("WARDEN_TEST_SLACK_SIGNING", slackTestSecret)
	t.Setenv("WARDEN_TEST_WEBHOOK", webhookTestSecret)
	sl := newSlackStandin(t)
	e := aprSetup(t, time.Hour)
	doc := fmt.Sprintf(`kind: approvals
slack:
  channel: C0TEST
  bot_token: env://WARDEN_TEST_SLACK_TOKEN
  signing_secret: env://WARDEN_TEST_SLACK_SIGNING
  base_url: %s/api
  users: {U0ALICE: alice, U0BOB: bob, U0NORA: nora, U0GHOST: ghost}
webhooks:
  - {url: "%s/hook", secret: env://WARDEN_TEST_WEBHOOK}
`, sl.srv.URL, sl.srv.URL)
	if err := os.WriteFile(filepath.Join(e.cfg, "approvals.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	e.stop()
	e.start(time.Hour)
	return e, sl
}

// click posts a signed block_actions payload as Slack would.
func (e *aprEnv) click(user, actionID, approvalID, responseURL string, ts time.Time, key string) (*http.Request, int) {
	e.t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": user, "username": strings.ToLower(user)},
		"team": map[string]any{"id": "T0TEAM"}, "response_url": responseURL, "trigger_id": "1.2.3",
		"actions": []any{map[string]any{"action_id": actionID, "block_id": "warden_decide", "value": approvalID, "type": "button"}},
	})
	body := url.Values{"payload": {string(payload)}}.Encode()
	stamp := strconv.FormatInt(ts.Unix(), 10)
	req, _ := http.NewRequest("POST", e.url+"/slack/interactions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(notify.HeaderSlackTimestamp, stamp)
	req.Header.Set(notify.HeaderSlackSignature, notify.SlackSign([]byte(key), stamp, []byte(body)))
	return req, e.send(req)
}

func (e *aprEnv) send(req *http.Request) int {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSlackStandinPostMessage: a pending call is posted to the channel with
// its context, redacted args and buttons carrying the approval id; a failed
// post is retried and never fails the call.
func TestSlackStandinPostMessage(t *testing.T) {
	e, sl := slackSetup(t)
	sl.mu.Lock()
	sl.failNext = 1 // the first attempt fails: the notifier retries
	sl.mu.Unlock()
	leak := "ghp_" + strings.Repeat("A1b2C3d4E5", 4)[:36]
	code, m := e.do("POST", "/v1/calls", e.agent, map[string]any{"connector": "pay", "action": "refund",
		"args": map[string]any{"order": "o-1", "amount": 500, "note": leak}})
	if code != http.StatusAccepted {
		t.Fatalf("call: %d %v, want 202 at once whatever Slack does", code, m)
	}
	aprID := m["approval_id"].(string)
	p := next(t, sl.posts, "chat.postMessage")
	if got, want := p.auth, "Bearer "+slackTestToken; got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
	if got, want := p.body["channel"], "C0TEST"; got != want {
		t.Errorf("channel = %v, want %v", got, want)
	}
	if txt, _ := p.body["text"].(string); !strings.Contains(txt, aprID) || !strings.Contains(txt, "default/bot") {
		t.Errorf("text = %q, want the agent and approval id", txt)
	}
	for _, want := range []string{`"action_id":"warden_approve"`, `"action_id":"warden_deny"`, `"value":"` + aprID + `"`, "pay.refund", "o-1", "Expires"} {
		if !strings.Contains(p.raw, want) {
			t.Errorf("postMessage body lacks %s:\n%s", want, p.raw)
		}
	}
	if strings.Contains(p.raw, leak) {
		t.Errorf("postMessage body carries the token-shaped arg unredacted:\n%s", p.raw)
	}
	h := next(t, sl.hooks, "webhook delivery with a valid signature")
	if h.body["event"] != notify.EventPending || !strings.Contains(h.raw, `"id":"`+aprID+`"`) || strings.Contains(h.raw, leak) {
		t.Errorf("webhook body = %s, want approval.pending for %s, args redacted", h.raw, aprID)
	}
}

// TestSlackStandinInteractions: signature valid, invalid, stale, replayed;
// unmapped, tokenless and out-of-scope users; approve and deny update the
// message with who decided, and an approved call runs once.
func TestSlackStandinInteractions(t *testing.T) {
	e, sl := slackSetup(t)
	respond := sl.srv.URL + "/respond/"
	callID, aprID := e.pending(e.agent, "refund", "o-10", nil)
	next(t, sl.posts, "chat.postMessage")
	now := time.Now()

	t.Run("invalid signature", func(t *testing.T) {
		if _, code := e.click("U0ALICE", notify.ActionApprove, aprID, respond+"x", now, "wrong-secret"); code != http.StatusUnauthorized {
			t.Errorf("got %d, want 401", code)
		}
	})
	t.Run("stale timestamp", func(t *testing.T) {
		if _, code := e.click("U0ALICE", notify.ActionApprove, aprID, respond+"x", now.Add(-6*time.Minute), slackTestSecret); code != http.StatusUnauthorized {
			t.Errorf("got %d, want 401", code)
		}
	})
	t.Run("unmapped user", func(t *testing.T) {
		if _, code := e.click("U0NOBODY", notify.ActionApprove, aprID, respond+"u", now, slackTestSecret); code != http.StatusOK {
			t.Fatalf("got %d, want 200 (refused through response_url)", code)
		}
		r := next(t, sl.replies, "ephemeral answer")
		if r.body["response_type"] != "ephemeral" || !strings.Contains(r.raw, "not mapped") {
			t.Errorf("answer = %s, want an ephemeral 'not mapped'", r.raw)
		}
	})
	t.Run("mapped name without a token", func(t *testing.T) {
		e.click("U0GHOST", notify.ActionApprove, aprID, respond+"g", now, slackTestSecret)
		if r := next(t, sl.replies, "ephemeral answer"); !strings.Contains(r.raw, "no active approver token") {
			t.Errorf("answer = %s, want 'no active approver token'", r.raw)
		}
	})
	t.Run("out of scope", func(t *testing.T) {
		e.click("U0NORA", notify.ActionApprove, aprID, respond+"n", now, slackTestSecret)
		if r := next(t, sl.replies, "ephemeral answer"); r.body["response_type"] != "ephemeral" || !strings.Contains(r.raw, "outside this approver") {
			t.Errorf("answer = %s, want an ephemeral scope refusal", r.raw)
		}
	})
	if e.up.count("/refunds/o-10") != 0 {
		t.Fatal("the call ran before anyone in scope approved it")
	}

	req, code := e.click("U0ALICE", notify.ActionApprove, aprID, respond+"a", now, slackTestSecret)
	if code != http.StatusOK {
		t.Fatalf("valid approve: %d, want 200", code)
	}
	if got := e.waitDone(e.agent, callID); got["status"] != "succeeded" {
		t.Fatalf("call after Slack approval: %v, want succeeded", got)
	}
	r := next(t, sl.replies, "message update")
	if r.body["replace_original"] != true || !strings.Contains(r.raw, "Approved by approver:alice via slack") || strings.Contains(r.raw, "warden_approve") {
		t.Errorf("update = %s, want the message replaced, naming alice, without buttons", r.raw)
	}

	t.Run("replayed", func(t *testing.T) {
		again, _ := http.NewRequest("POST", req.URL.String(), strings.NewReader(mustBody(t, req)))
		again.Header = req.Header.Clone()
		if code := e.send(again); code != http.StatusUnauthorized {
			t.Errorf("replay: got %d, want 401", code)
		}
	})
	if got := e.up.count("/refunds/o-10"); got != 1 {
		t.Errorf("upstream saw %d refunds, want 1", got)
	}
	var sawSlack bool
	for _, rec := range e.records(callID) {
		if rec.Kind == "approval" && rec.Approval != nil && rec.Approval.Channel == approval.ChannelSlack && rec.Approval.Approver == "approver:alice" {
			sawSlack = true
		}
	}
	if !sawSlack {
		t.Errorf("no approval record by approver:alice via slack: %s", kinds(e.records(callID)))
	}

	// Deny: refused, the message says who.
	callID, aprID = e.pending(e.agent, "refund", "o-11", nil)
	next(t, sl.posts, "chat.postMessage")
	e.click("U0BOB", notify.ActionDeny, aprID, respond+"b", time.Now(), slackTestSecret)
	if r := next(t, sl.replies, "message update"); !strings.Contains(r.raw, "Denied by approver:bob via slack") {
		t.Errorf("update = %s, want 'Denied by approver:bob via slack'", r.raw)
	}
	if got := e.waitDone(e.agent, callID); got["status"] != "refused" || !strings.Contains(got["reason"].(string), "approver:bob via slack") {
		t.Errorf("denied call: %v, want refused naming bob via slack", got)
	}
}

// mustBody re-reads a sent request's body (GetBody keeps it).
func mustBody(t *testing.T, req *http.Request) string {
	rc, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSlackStandinExactlyOnce: Slack and the API approve the same call at
// the same moment; the upstream sees it once.
func TestSlackStandinExactlyOnce(t *testing.T) {
	e, sl := slackSetup(t)
	// 10 rounds fit the stand-in's buffered channels; nothing reads them.
	for i := range 10 {
		order := fmt.Sprintf("race-%d", i)
		callID, aprID := e.pending(e.agent, "refund", order, nil)
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			e.click("U0ALICE", notify.ActionApprove, aprID, sl.srv.URL+"/respond/r", time.Now(), slackTestSecret)
		}()
		go func() {
			defer wg.Done()
			<-start
			e.do("POST", "/v1/approvals/"+aprID+"/approve", e.tokens["bob"], nil)
		}()
		close(start)
		wg.Wait()
		if got := e.waitDone(e.agent, callID); got["status"] != "succeeded" {
			t.Fatalf("%s: %v, want succeeded", order, got)
		}
		if got := e.up.count("/refunds/" + order); got != 1 {
			t.Errorf("%s: upstream saw %d requests, want exactly 1", order, got)
		}
	}
}
