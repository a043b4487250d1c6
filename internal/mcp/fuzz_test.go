package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/policy"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

// httpExec runs every action against an upstream, like the http
// connector, so that allowed calls execute for real.
type httpExec struct{ url string }

func (h httpExec) Execute(ctx context.Context, action string, args map[string]any) (*dispatch.Outcome, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", h.url+"/"+action, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &dispatch.Outcome{Failed: true, Error: "unreachable"}, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &dispatch.Outcome{Result: json.RawMessage(b)}, nil
}

// FuzzServeMCP sends arbitrary bodies to the /mcp handler of an
// authenticated agent, over a real dispatcher and SQLite store: whatever
// the frame, the handler answers without panicking, and a JSON answer is
// valid JSON.
func FuzzServeMCP(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"up__get","arguments":{"id":1}}}`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"up__ask","arguments":null,"_meta":{"progressToken":"t"}}}`,
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"nope","arguments":[1]}}`,
		`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"up__off"}}`,
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"up__get","arguments":{"id":1},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"f","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`,
		`[{"jsonrpc":"2.0","id":8,"method":"ping"}]`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{`, ``,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
	defer up.Close()
	cfg, err := config.Parse([]config.File{{Name: "c.yaml", Data: []byte(`
kind: agent
name: bot
owner: a@example.com
permissions:
  up: {get: on, ask: ask, off: off}
---
kind: connector
name: up
type: http
base_url: http://127.0.0.1:1
actions:
  get: {type: read, input_schema: {type: object, properties: {id: {type: integer}}}}
  ask: {type: write}
  off: {type: delete}
`)}})
	if err != nil {
		f.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "w.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	d := dispatch.New(dispatch.Options{Store: st, Approvals: st}, &dispatch.Snapshot{
		Engine: policy.New(cfg), Executors: map[string]dispatch.Executor{"up": httpExec{up.URL}},
	})
	s := New(Options{Dispatcher: d, Wait: -1})
	p := call.Principal{Role: call.RoleAgent, Tenant: call.DefaultTenant, Agent: "bot", TokenID: "t"}
	f.Fuzz(func(t *testing.T, body []byte, modern bool) {
		req := httptest.NewRequest("POST", "/mcp", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer checked-by-the-server")
		if modern {
			// The standard headers a 2026-07-28 client sends, from the
			// body as far as it parses.
			req.Header.Set(protocolVersionHeader, "2026-07-28")
			if fr, err := parseFrame(body); err == nil && fr.Method != "" {
				req.Header.Set(methodHeader, fr.Method)
				if name, ok := requestName(fr.Method, fr.Params); ok {
					req.Header.Set(nameHeader, name)
				}
			}
		}
		ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
		defer cancel()
		w := httptest.NewRecorder()
		if err := s.ServeMCP(w, req.WithContext(ctx), p); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") && w.Body.Len() > 0 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("invalid JSON answer %q to %q", w.Body.String(), body)
		}
		if strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
			if err := readSSE(bytes.NewReader(w.Body.Bytes()), maxFrame, func(data []byte) error {
				if !json.Valid(data) {
					return fmt.Errorf("invalid JSON event %q", data)
				}
				return nil
			}); err != nil {
				t.Fatalf("%v (request %q)", err, body)
			}
		}
	})
}
