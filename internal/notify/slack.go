package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/secret"
)

// Button action ids; the button's value is the approval id.
const (
	ActionApprove = "warden_approve"
	ActionDeny    = "warden_deny"
)

// Slack posts approval requests to a channel through the Web API and
// updates them through an interaction's response_url.
type Slack struct {
	BaseURL string // e.g. https://slack.com/api
	Channel string
	Token   func(ctx context.Context) (secret.Value, error) // the bot token
	Client  *http.Client
}

var _ Sink = (*Slack)(nil)

// Name is "slack".
func (s *Slack) Name() string { return "slack" }

// Send posts v with Approve/Deny buttons (chat.postMessage).
func (s *Slack) Send(ctx context.Context, v dispatch.ApprovalView) error {
	tok, err := s.Token(ctx)
	if err != nil {
		return fmt.Errorf("slack bot token: %w", err)
	}
	msg := map[string]any{
		"channel":      s.Channel,
		"text":         Summary(v),
		"blocks":       Blocks(v, ""),
		"unfurl_links": false,
		"unfurl_media": false,
	}
	var out struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := s.post(ctx, strings.TrimRight(s.BaseURL, "/")+"/chat.postMessage", tok.Reveal(), msg, &out); err != nil {
		return err
	}
	if !out.OK {
		err := fmt.Errorf("slack chat.postMessage: %s", out.Error)
		switch out.Error {
		case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return err
		}
		return &Permanent{Err: err} // invalid_auth, channel_not_found, not_in_channel, ...
	}
	return nil
}

// Update replaces the message an interaction came from (through its
// response_url) with v's current state and note, without buttons once v
// is decided.
func (s *Slack) Update(ctx context.Context, responseURL string, v dispatch.ApprovalView, note string) error {
	return s.post(ctx, responseURL, "", map[string]any{
		"replace_original": true,
		"text":             Summary(v) + ": " + note,
		"blocks":           Blocks(v, note),
	}, nil)
}

// Ephemeral shows text to the user who clicked, only to them.
func (s *Slack) Ephemeral(ctx context.Context, responseURL, text string) error {
	return s.post(ctx, responseURL, "", map[string]any{
		"response_type":    "ephemeral",
		"replace_original": false,
		"text":             text,
	}, nil)
}

func (s *Slack) post(ctx context.Context, u, token string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return &Permanent{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return &Permanent{Err: err}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client(s.Client).Do(req)
	if err != nil {
		return fmt.Errorf("slack: %w", scrubURL(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return statusError("slack", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("slack: unreadable answer: %w", err)
		}
	}
	return nil
}

// Summary is the message's plain-text fallback (notifications, screen
// readers).
func Summary(v dispatch.ApprovalView) string {
	return fmt.Sprintf("Approval needed: %s/%s wants %s.%s (%s)", v.Tenant, v.Agent, v.Connector, v.Action, v.ID)
}

// maxArgs bounds the args shown (a section's text is at most 3,000 chars).
const maxArgs = 2500

// Blocks renders v as Block Kit: the context a human decides on and,
// while note is empty, Approve and Deny buttons carrying the approval id.
func Blocks(v dispatch.ApprovalView, note string) []any {
	text := func(s string) map[string]any { return map[string]any{"type": "mrkdwn", "text": s} }
	args := string(v.Args)
	if len(args) > maxArgs {
		args = args[:maxArgs] + "…"
	}
	rules := strings.Join(v.Rules, ", ")
	if rules == "" {
		rules = "(permission: ask)"
	}
	expiry := "never"
	if v.ExpiresAt != nil {
		expiry = fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", v.ExpiresAt.Unix(), v.ExpiresAt.UTC().Format(time.RFC3339))
	}
	fields := []any{
		text("*Agent*\n" + esc(v.Tenant+"/"+v.Agent)),
		text("*Action*\n" + esc(v.Connector+"."+v.Action) + " (" + esc(v.ActionType) + ")"),
		text("*Rules*\n" + esc(rules)),
		text("*Expires*\n" + expiry),
	}
	if v.Environment != "" {
		fields = append(fields, text("*Environment*\n"+esc(v.Environment)))
	}
	if v.Trigger != "" {
		fields = append(fields, text("*Started by*\n"+esc(v.Trigger)))
	}
	blocks := []any{
		map[string]any{"type": "section", "block_id": "warden_summary", "text": text(fmt.Sprintf(":raised_hand: *Approval needed* — `%s`", esc(v.ID)))},
		map[string]any{"type": "section", "block_id": "warden_context", "fields": fields},
		map[string]any{"type": "section", "block_id": "warden_reason", "text": text("*Reason*\n" + esc(v.Reason))},
		map[string]any{"type": "section", "block_id": "warden_args", "text": text("*Args* (redacted)\n```" + esc(strings.ReplaceAll(args, "```", "ˋˋˋ")) + "```")},
	}
	if note != "" {
		return append(blocks, map[string]any{"type": "context", "block_id": "warden_decided", "elements": []any{text(esc(note))}})
	}
	button := func(label, id, style string) map[string]any {
		return map[string]any{
			"type": "button", "action_id": id, "value": v.ID, "style": style,
			"text": map[string]any{"type": "plain_text", "text": label},
		}
	}
	return append(blocks, map[string]any{
		"type": "actions", "block_id": "warden_decide",
		"elements": []any{button("Approve", ActionApprove, "primary"), button("Deny", ActionDeny, "danger")},
	})
}

// esc escapes Slack's control characters in mrkdwn.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Slack request signing.
const (
	HeaderSlackSignature = "X-Slack-Signature"
	HeaderSlackTimestamp = "X-Slack-Request-Timestamp"
	// SlackWindow is how far a request's timestamp may be from now.
	SlackWindow = 300 * time.Second
)

// Signature check failures; their text is safe to return.
var (
	ErrStale        = errors.New("slack request timestamp missing or outside the 300 s window")
	ErrBadSignature = errors.New("slack request signature does not match")
	ErrReplayed     = errors.New("slack request already received")
)

// SlackSign returns the X-Slack-Signature for body sent at ts.
func SlackSign(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySlack checks a request's timestamp (within SlackWindow of now) and
// signature (constant-time), and returns the timestamp.
func VerifySlack(key []byte, ts, sig string, body []byte, now time.Time) (time.Time, error) {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, ErrStale
	}
	t := time.Unix(sec, 0)
	if d := now.Sub(t); d > SlackWindow || d < -SlackWindow {
		return time.Time{}, ErrStale
	}
	if !hmac.Equal([]byte(sig), []byte(SlackSign(key, ts, body))) {
		return time.Time{}, ErrBadSignature
	}
	return t, nil
}

// ReplayGuard remembers the signatures of requests seen within the window,
// so that a captured request cannot be sent again while its timestamp is
// still accepted.
type ReplayGuard struct {
	mu   sync.Mutex
	seen map[string]time.Time // signature → request timestamp
}

// Seen records sig (of a request stamped ts) and reports whether it was
// already recorded.
func (g *ReplayGuard) Seen(sig string, ts, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]time.Time{}
	}
	if len(g.seen) > 1024 {
		for k, t := range g.seen {
			if now.Sub(t) > SlackWindow {
				delete(g.seen, k)
			}
		}
	}
	if _, ok := g.seen[sig]; ok {
		return true
	}
	g.seen[sig] = ts
	return false
}

// Interaction is the part of a Slack block_actions payload warden uses.
type Interaction struct {
	UserID      string
	TeamID      string
	ResponseURL string
	Approve     bool
	ApprovalID  string
}

// ParseInteraction reads an interactivity request body
// (application/x-www-form-urlencoded with one `payload` field of JSON): a
// block_actions click on one of warden's buttons. Errors are safe to show.
func ParseInteraction(body []byte) (*Interaction, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errors.New("body is not form-encoded")
	}
	raw := form.Get("payload")
	if raw == "" {
		return nil, errors.New("no payload field")
	}
	var p struct {
		Type string `json:"type"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Team struct {
			ID string `json:"id"`
		} `json:"team"`
		ResponseURL string `json:"response_url"`
		Actions     []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"actions"`
	}
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return nil, errors.New("payload is not JSON")
	}
	if p.Type != "block_actions" {
		return nil, fmt.Errorf("payload type %q is not handled; expected block_actions", truncate(p.Type))
	}
	if p.User.ID == "" {
		return nil, errors.New("payload has no user.id")
	}
	if len(p.Actions) != 1 {
		return nil, fmt.Errorf("payload has %d actions; expected one", len(p.Actions))
	}
	a := p.Actions[0]
	in := &Interaction{UserID: p.User.ID, TeamID: p.Team.ID, ResponseURL: p.ResponseURL, ApprovalID: a.Value}
	switch a.ActionID {
	case ActionApprove:
		in.Approve = true
	case ActionDeny:
	default:
		return nil, fmt.Errorf("action %q is not warden's", truncate(a.ActionID))
	}
	if a.Value == "" || len(a.Value) > 128 {
		return nil, errors.New("action value is not an approval id")
	}
	if p.ResponseURL != "" {
		u, err := url.Parse(p.ResponseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, errors.New("response_url is not an http(s) URL")
		}
	}
	return in, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
