package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/alert"
	"github.com/warden-dev/warden/internal/notify"
	"github.com/warden-dev/warden/internal/secret"
)

// TestAlertWebhookFiringAndResolved: the evaluator, on an injected clock,
// sends one signed alert.firing and, once the denials have left the
// window, one alert.resolved to a webhook receiver; a receiver that was
// down gets the event at the next evaluation.
func TestAlertWebhookFiringAndResolved(t *testing.T) {
	const key = "whsec-alerts"
	var mu sync.Mutex
	var got []notify.AlertBody
	down := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if down {
			down = false
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if !notify.VerifyWebhook([]byte(key), body, r.Header.Get(notify.HeaderSignature)) {
			t.Errorf("bad signature")
		}
		var b notify.AlertBody
		if err := json.Unmarshal(body, &b); err != nil || b.Event != r.Header.Get(notify.HeaderEvent) {
			t.Errorf("body %s: %v (event header %q)", body, err, r.Header.Get(notify.HeaderEvent))
		}
		got = append(got, b)
	}))
	defer srv.Close()

	now := time.Date(2026, 3, 1, 2, 13, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	wh := &notify.Webhook{URL: srv.URL, Now: clock,
		Secret: func(context.Context) (secret.Value, error) { return secret.NewValue(key), nil }}
	cond, err := alert.Parse("deny_rate > 0.2 over 5m")
	if err != nil {
		t.Fatal(err)
	}
	e := alert.New(alert.Options{
		Rules:   []alert.Rule{{Name: "denials", When: cond, Notify: []string{alert.ChannelWebhook}}},
		Senders: map[string][]alert.Sender{alert.ChannelWebhook: {wh}},
		Now:     clock,
	})
	ctx := context.Background()
	k := alert.Key{Agent: "bot", Connector: "pay"}
	for i := range 10 {
		e.Decided(k, i < 5)
	}
	e.Evaluate(ctx) // the receiver is down: nothing delivered
	now = now.Add(15 * time.Second)
	e.Evaluate(ctx) // delivered
	now = now.Add(15 * time.Second)
	e.Evaluate(ctx) // still firing: nothing new
	now = now.Add(6 * time.Minute)
	e.Evaluate(ctx) // resolved
	e.Evaluate(ctx)

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Event != alert.EventFiring || got[1].Event != alert.EventResolved {
		t.Fatalf("received %+v; want one alert.firing then one alert.resolved", got)
	}
	f := got[0].Alert
	if f.Rule != "denials" || f.Value != 0.5 || f.Threshold != 0.2 || !f.Since.Equal(time.Date(2026, 3, 1, 2, 13, 0, 0, time.UTC)) {
		t.Errorf("firing: %+v", f)
	}
	if r := got[1].Alert; !r.Resolved || r.Value != 0 || r.Duration != "6m30s" || !got[1].SentAt.Equal(now) {
		t.Errorf("resolved: %+v sent %v", r, got[1].SentAt)
	}
}

func TestAlertText(t *testing.T) {
	at := time.Date(2026, 3, 1, 2, 13, 0, 0, time.UTC)
	for _, tc := range []struct {
		e    alert.Event
		want string
	}{
		{alert.Event{Event: alert.EventFiring, Rule: "denials", When: "deny_rate > 0.2 over 5m", Value: 0.5, Since: at},
			":rotating_light: Firing: warden alert denials: deny_rate &gt; 0.2 over 5m (value 0.5) since 2026-03-01T02:13:00Z"},
		{alert.Event{Event: alert.EventResolved, Rule: "denials", When: "deny_rate > 0.2 over 5m", Duration: "6m30s"},
			":white_check_mark: Resolved: warden alert denials (deny_rate &gt; 0.2 over 5m) after 6m30s; now 0"},
	} {
		if got := notify.AlertText(tc.e); got != tc.want {
			t.Errorf("AlertText = %q, want %q", got, tc.want)
		}
	}
}
