package notify

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/alert"
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
	t := w.sentAt()
	return w.post(ctx, e.Event, t, AlertBody{Event: e.Event, SentAt: t, Alert: e})
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
