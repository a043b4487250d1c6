package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/notify"
	"github.com/warden-dev/warden/internal/secret"
)

func view() dispatch.ApprovalView {
	exp := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	return dispatch.ApprovalView{ID: "apr_1", CallID: "call_1", Status: "pending", Tenant: "acme", Agent: "bot",
		Connector: "pay", Action: "refund", ActionType: "external", Args: []byte(`{"amount":500}`),
		Rules: []string{"big-refunds"}, Reason: "needs a human", ExpiresAt: &exp, MinApprovals: 1}
}

// TestWebhookSignatureVerifiable: a receiver holding the secret verifies
// what warden sent, and a tampered body fails.
func TestWebhookSignatureVerifiable(t *testing.T) {
	const key = "whsec-test-key"
	got := make(chan bool, 1)
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		ts, err := strconv.ParseInt(r.Header.Get(notify.HeaderTimestamp), 10, 64)
		fresh := err == nil && time.Since(time.Unix(ts, 0)) < time.Minute
		got <- fresh && notify.VerifyWebhook([]byte(key), body, r.Header.Get(notify.HeaderSignature)) &&
			r.Header.Get(notify.HeaderEvent) == notify.EventPending
	}))
	defer srv.Close()
	w := &notify.Webhook{URL: srv.URL, Secret: func(context.Context) (secret.Value, error) { return secret.NewValue(key), nil }}
	if err := w.Send(context.Background(), view()); err != nil {
		t.Fatal(err)
	}
	if !<-got {
		t.Fatal("the receiver could not verify the signature, timestamp or event")
	}
	var wb struct {
		Event    string `json:"event"`
		Approval struct {
			ID string `json:"id"`
		} `json:"approval"`
	}
	if err := json.Unmarshal(body, &wb); err != nil || wb.Approval.ID != "apr_1" || wb.Event != notify.EventPending {
		t.Errorf("body = %s (%v), want the approval request", body, err)
	}
	if notify.VerifyWebhook([]byte(key), append(body, ' '), notify.Sign([]byte(key), body)) {
		t.Error("a tampered body verified")
	}
	if notify.VerifyWebhook([]byte("other"), body, notify.Sign([]byte(key), body)) {
		t.Error("another key verified")
	}
}

// TestNotifierRetriesAndNeverBlocks: failures are retried with backoff, a
// 4xx is not retried, and a full queue drops instead of blocking.
func TestNotifierRetriesAndNeverBlocks(t *testing.T) {
	var hits atomic.Int32
	codes := []int{500, 503, 200}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(hits.Add(1)) - 1
		w.WriteHeader(codes[min(n, len(codes)-1)])
	}))
	defer srv.Close()
	key := func(context.Context) (secret.Value, error) { return secret.NewValue("k"), nil }
	n := notify.New(notify.Options{Backoff: time.Millisecond, QueueSize: 1}, &notify.Webhook{URL: srv.URL, Secret: key})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	n.Pending(view())
	deadline := time.Now().Add(5 * time.Second)
	for n.Stats()["webhook:"+mustHost(t, srv.URL)].Sent == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st := n.Stats()["webhook:"+mustHost(t, srv.URL)]
	if st.Sent != 1 || st.Retries != 2 || hits.Load() != 3 {
		t.Errorf("stats %+v after %d hits, want sent 1 after 2 retries (3 hits)", st, hits.Load())
	}
	cancel()
	<-done

	// Not running: the queue (1) fills and further requests are dropped at once.
	stopped := notify.New(notify.Options{QueueSize: 1}, &notify.Webhook{URL: srv.URL, Secret: key})
	start := time.Now()
	for range 100 {
		stopped.Pending(view())
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Pending blocked for %v", d)
	}
	if got := stopped.Stats()["webhook:"+mustHost(t, srv.URL)].Dropped; got != 99 {
		t.Errorf("dropped = %d, want 99", got)
	}
}

func mustHost(t *testing.T, u string) string {
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}

func TestVerifySlack(t *testing.T) {
	key := []byte("signing")
	now := time.Unix(1_800_000_000, 0)
	body := []byte("payload=%7B%7D")
	ts := strconv.FormatInt(now.Unix(), 10)
	good := notify.SlackSign(key, ts, body)
	tests := []struct {
		name, ts, sig string
		body          []byte
		want          error
	}{
		{"valid", ts, good, body, nil},
		{"wrong signature", ts, "v0=" + string(make([]byte, 64)), body, notify.ErrBadSignature},
		{"body changed", ts, good, []byte("payload=%7B%7D&x=1"), notify.ErrBadSignature},
		{"timestamp changed", strconv.FormatInt(now.Unix()-1, 10), good, body, notify.ErrBadSignature},
		{"stale", strconv.FormatInt(now.Add(-301*time.Second).Unix(), 10), notify.SlackSign(key, strconv.FormatInt(now.Add(-301*time.Second).Unix(), 10), body), body, notify.ErrStale},
		{"future", strconv.FormatInt(now.Add(301*time.Second).Unix(), 10), good, body, notify.ErrStale},
		{"no timestamp", "", good, body, notify.ErrStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := notify.VerifySlack(key, tt.ts, tt.sig, tt.body, now)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	var g notify.ReplayGuard
	if g.Seen(good, now, now) {
		t.Error("first sight reported as a replay")
	}
	if !g.Seen(good, now, now) {
		t.Error("second sight not reported as a replay")
	}
}

func TestParseInteraction(t *testing.T) {
	form := func(payload string) []byte { return []byte(url.Values{"payload": {payload}}.Encode()) }
	in, err := notify.ParseInteraction(form(`{"type":"block_actions","user":{"id":"U1"},"team":{"id":"T1"},"response_url":"https://hooks.slack.com/actions/x","actions":[{"action_id":"warden_deny","value":"apr_9"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if in.UserID != "U1" || in.TeamID != "T1" || in.Approve || in.ApprovalID != "apr_9" {
		t.Errorf("got %+v", in)
	}
	for name, body := range map[string][]byte{
		"no payload":     []byte("x=1"),
		"not json":       form("{"),
		"other type":     form(`{"type":"view_submission","user":{"id":"U1"}}`),
		"no user":        form(`{"type":"block_actions","actions":[{"action_id":"warden_approve","value":"a"}]}`),
		"foreign action": form(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"other","value":"a"}]}`),
		"two actions":    form(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"warden_approve","value":"a"},{"action_id":"warden_deny","value":"a"}]}`),
		"no value":       form(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"warden_approve"}]}`),
		"bad url":        form(`{"type":"block_actions","user":{"id":"U1"},"response_url":"javascript:alert(1)","actions":[{"action_id":"warden_approve","value":"a"}]}`),
	} {
		if _, err := notify.ParseInteraction(body); err == nil {
			t.Errorf("%s: parsed, want an error", name)
		}
	}
}

// FuzzParseInteraction: the Slack payload parser never panics and what it
// accepts is a warden click.
func FuzzParseInteraction(f *testing.F) {
	f.Add([]byte(url.Values{"payload": {`{"type":"block_actions","user":{"id":"U1"},"team":{"id":"T1"},"response_url":"https://hooks.slack.com/a","actions":[{"action_id":"warden_approve","value":"apr_1"}]}`}}.Encode()))
	f.Add([]byte("payload=%7B%22type%22%3A%22block_actions%22%7D"))
	f.Add([]byte("payload=null"))
	f.Add([]byte("%zz"))
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := notify.ParseInteraction(body)
		if err != nil {
			return
		}
		if in.UserID == "" || in.ApprovalID == "" || len(in.ApprovalID) > 128 {
			t.Fatalf("accepted %+v", in)
		}
	})
}

// TestBlocks: the buttons carry the approval id; a decided message has none.
func TestBlocks(t *testing.T) {
	b, _ := json.Marshal(notify.Blocks(view(), ""))
	for _, want := range []string{`"action_id":"warden_approve"`, `"action_id":"warden_deny"`, `"value":"apr_1"`, "big-refunds", "acme/bot", "\\u003c!date^"} {
		if !json.Valid(b) || !strings.Contains(string(b), want) {
			t.Errorf("blocks lack %s: %s", want, b)
		}
	}
	d, _ := json.Marshal(notify.Blocks(view(), "Approved by approver:alice"))
	if strings.Contains(string(d), "warden_approve") || !strings.Contains(string(d), "Approved by approver:alice") {
		t.Errorf("decided blocks = %s, want the note and no buttons", d)
	}
}
