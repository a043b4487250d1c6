package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/alert"
	"github.com/warden-dev/warden/internal/call"
)

var (
	_ alert.Sender = (*Webhook)(nil)
	_ alert.Sender = (*Slack)(nil)
)

// AlertBody is what a webhook receives for an alert: event is
// alert.firing or alert.resolved.
type AlertBody struct {
	Event  string      `json:"event"`
	SentAt time.Time   `json:"sent_at"`
	Alert  alert.Event `json:"alert"`
}

// SendAlert posts an alert event, signed like approval requests
// (X-Warden-Signature over the raw body, X-Warden-Event the event). It is
// called by the alert evaluator, which retries at its next evaluation.
func (w *Webhook) SendAlert(ctx context.Context, e alert.Event) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	t := now().UTC().Truncate(time.Second)
	body, err := json.Marshal(AlertBody{Event: e.Event, SentAt: t, Alert: e})
	if err != nil {
		return err
	}
	key, err := w.Secret(ctx)
	if err != nil {
		return fmt.Errorf("webhook secret: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "warden-webhook/1")
	req.Header.Set(HeaderEvent, e.Event)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(t.Unix(), 10))
	req.Header.Set(HeaderDelivery, call.NewID("dlv", t))
	req.Header.Set(HeaderSignature, Sign([]byte(key.Reveal()), body))
	resp, err := client(w.Client).Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.Name(), scrubURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return statusError("webhook "+w.Name(), resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	return nil
}

// SendAlert posts an alert event to the channel (chat.postMessage).
func (s *Slack) SendAlert(ctx context.Context, e alert.Event) error {
	tok, err := s.Token(ctx)
	if err != nil {
		return fmt.Errorf("slack bot token: %w", err)
	}
	var out struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	msg := map[string]any{"channel": s.Channel, "text": AlertText(e), "unfurl_links": false, "unfurl_media": false}
	if err := s.post(ctx, strings.TrimRight(s.BaseURL, "/")+"/chat.postMessage", tok.Reveal(), msg, &out); err != nil {
		return err
	}
	if !out.OK {
		return fmt.Errorf("slack chat.postMessage: %s", out.Error)
	}
	return nil
}

// AlertText is the Slack message of an alert event.
func AlertText(e alert.Event) string {
	v := strconv.FormatFloat(e.Value, 'g', 4, 64)
	if e.Event == alert.EventResolved {
		return fmt.Sprintf(":white_check_mark: Resolved: warden alert %s (%s) after %s; now %s", esc(e.Rule), esc(e.When), e.Duration, v)
	}
	return fmt.Sprintf(":rotating_light: Firing: warden alert %s: %s (value %s) since %s", esc(e.Rule), esc(e.When), v, e.Since.UTC().Format(time.RFC3339))
}
