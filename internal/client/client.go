// Package client is a Go client for warden's HTTP API, used by the CLI, the
// tests and the load harness. It speaks only the public API.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one warden server with one token.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:7070
	Token   string
	HTTP    *http.Client // nil: http.DefaultClient
}

// New returns a client for baseURL authenticating with token.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token}
}

// Error is an API error response.
type Error struct {
	Status  int
	Code    string
	Message string
	ID      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("warden: %d %s: %s", e.Status, e.Code, e.Message)
}

// CallRequest is a call to make.
type CallRequest struct {
	Connector   string         `json:"connector"`
	Action      string         `json:"action"`
	Args        map[string]any `json:"args,omitempty"`
	Environment string         `json:"environment,omitempty"`
	RunID       string         `json:"run_id,omitempty"`
	Trigger     string         `json:"trigger,omitempty"`
	Wait        string         `json:"wait,omitempty"`
	FrontEnd    string         `json:"front_end,omitempty"` // rest (default) or hook; POST /v1/decide only
}

// CallResult is the answer to a call: 200, 202, 403 and 429 (a rate
// limit) all carry one.
type CallResult struct {
	HTTPStatus int             `json:"-"`
	ID         string          `json:"id"`
	Decision   string          `json:"decision"`
	Status     string          `json:"status"`
	Rules      []string        `json:"rules"`
	Reason     string          `json:"reason"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      string          `json:"error,omitempty"`
	ApprovalID string          `json:"approval_id,omitempty"`
	ExpiresAt  *time.Time      `json:"expires_at,omitempty"`
	ResetsAt   *time.Time      `json:"resets_at,omitempty"`
	Version    string          `json:"config_version"`
}

// Call makes a call (POST /v1/calls). A DENY (403, or 429 for a rate
// limit) or a pending approval (202) is a result, not an error.
func (c *Client) Call(ctx context.Context, req CallRequest) (*CallResult, error) {
	var res CallResult
	status, err := c.do(ctx, http.MethodPost, "/v1/calls", req, &res, http.StatusOK, http.StatusAccepted, http.StatusForbidden, http.StatusTooManyRequests)
	res.HTTPStatus = status
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// Decide asks for a decision without executing (POST /v1/decide).
func (c *Client) Decide(ctx context.Context, req CallRequest) (*CallResult, error) {
	var res CallResult
	status, err := c.do(ctx, http.MethodPost, "/v1/decide", req, &res, http.StatusOK)
	res.HTTPStatus = status
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// GetCall returns a call's state (GET /v1/calls/{id}), long-polling up to
// wait while it is pending.
func (c *Client) GetCall(ctx context.Context, id string, wait time.Duration) (map[string]any, error) {
	p := "/v1/calls/" + url.PathEscape(id)
	if wait > 0 {
		p += "?wait=" + wait.String()
	}
	var res map[string]any
	_, err := c.do(ctx, http.MethodGet, p, nil, &res, http.StatusOK)
	return res, err
}

// Outcome is what a decide-only runtime reports.
type Outcome struct {
	Status     string          `json:"status"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      string          `json:"error,omitempty"`
	DurationMS int64           `json:"duration_ms,omitempty"`
	Tokens     int64           `json:"tokens,omitempty"`
	CostUSD    float64         `json:"cost_usd,omitempty"`
}

// ReportOutcome reports a decide-only call's outcome.
func (c *Client) ReportOutcome(ctx context.Context, id string, o Outcome) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/calls/"+url.PathEscape(id)+"/outcome", o, nil, http.StatusOK)
	return err
}

// Audit reads audit records (GET /v1/audit); query holds agent, since,
// until, decision, limit, tenant, after_seq.
func (c *Client) Audit(ctx context.Context, query url.Values) ([]map[string]any, error) {
	var res struct {
		Records []map[string]any `json:"records"`
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/audit?"+query.Encode(), nil, &res, http.StatusOK)
	return res.Records, err
}

func (c *Client) do(ctx context.Context, method, path string, body, out any, ok ...int) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			if out != nil {
				if err := json.Unmarshal(data, out); err != nil {
					return resp.StatusCode, fmt.Errorf("warden: decoding %d response: %w", resp.StatusCode, err)
				}
			}
			return resp.StatusCode, nil
		}
	}
	var e struct {
		Error struct{ Code, Message, ID string } `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
		return resp.StatusCode, &Error{Status: resp.StatusCode, Code: "unexpected", Message: strings.TrimSpace(string(data))}
	}
	return resp.StatusCode, &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, ID: e.Error.ID}
}
