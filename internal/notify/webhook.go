package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/secret"
)

// Webhook headers. The signature covers the raw body, which carries the
// same time as sent_at, so a receiver can reject old deliveries.
const (
	HeaderSignature = "X-Warden-Signature" // sha256=<hex HMAC-SHA256(secret, body)>
	HeaderTimestamp = "X-Warden-Timestamp" // Unix seconds when sent
	HeaderDelivery  = "X-Warden-Delivery"  // unique per attempt
	HeaderEvent     = "X-Warden-Event"     // approval.pending
)

// EventPending is the webhook event for a new approval request.
const EventPending = "approval.pending"

// WebhookBody is what a webhook receives.
type WebhookBody struct {
	Event    string                `json:"event"`
	SentAt   time.Time             `json:"sent_at"`
	Approval dispatch.ApprovalView `json:"approval"`
}

// Webhook posts approval requests to one URL.
type Webhook struct {
	URL    string
	Secret func(ctx context.Context) (secret.Value, error)
	Client *http.Client // default: 10 s timeout
	Now    func() time.Time
}

var _ Sink = (*Webhook)(nil)

// Name is "webhook:" and the URL's host.
func (w *Webhook) Name() string {
	if u, err := url.Parse(w.URL); err == nil {
		return "webhook:" + u.Host
	}
	return "webhook"
}

// Send posts v, signed.
func (w *Webhook) Send(ctx context.Context, v dispatch.ApprovalView) error {
	t := w.sentAt()
	return w.post(ctx, EventPending, t, WebhookBody{Event: EventPending, SentAt: t, Approval: v})
}

func (w *Webhook) sentAt() time.Time {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	return now().UTC().Truncate(time.Second)
}

// post sends one event: the JSON of payload, signed over the raw body
// (X-Warden-Signature), with its event name, time and a delivery id.
func (w *Webhook) post(ctx context.Context, event string, t time.Time, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return &Permanent{Err: err}
	}
	key, err := w.Secret(ctx)
	if err != nil {
		return fmt.Errorf("webhook secret: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return &Permanent{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "warden-webhook/1")
	req.Header.Set(HeaderEvent, event)
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

// Sign returns the X-Warden-Signature value for body.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook reports whether header is body's signature under key; a
// receiver should also check the timestamp.
func VerifyWebhook(key, body []byte, header string) bool {
	want := Sign(key, body)
	return hmac.Equal([]byte(strings.TrimSpace(header)), []byte(want))
}

func client(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return defaultClient
}

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// scrubURL keeps a transport error and drops the URL it names (a path may
// carry something private); the sink's name says where.
func scrubURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
