package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMCPWrongAgent: a request to /mcp that names, in X-Warden-Agent, an
// agent other than its token's is refused through the server's one error
// mapper, with the standard error body, before MCP sees it.
func TestMCPWrongAgent(t *testing.T) {
	w := start(t)
	req, err := http.NewRequest(http.MethodPost, w.url+"/mcp",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+w.agent(t, "bot"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("X-Warden-Agent", "other")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.StatusCode, http.StatusForbidden; got != want {
		t.Fatalf("status = %d, want %d: %s", got, want, raw)
	}
	if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, raw)
	}
	if got, want := body.Error.Code, "wrong_agent"; got != want {
		t.Errorf("error code = %q, want %q: %s", got, want, raw)
	}
	if !strings.Contains(body.Error.Message, "X-Warden-Agent") {
		t.Errorf("error message = %q, want it to name X-Warden-Agent", body.Error.Message)
	}
}
