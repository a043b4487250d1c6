package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBridge drives the stdio bridge against a stand-in for /mcp that
// answers the way the SDK's handler does (JSON, SSE, 202) and the way
// warden refuses (401 with its JSON error).
func TestBridge(t *testing.T) {
	var mu sync.Mutex
	versions := map[string]string{} // method → Mcp-Protocol-Version it came with
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":"unauthenticated","message":"unknown or revoked token"}}`)
			return
		}
		if r.Header.Get(agentHeader) != "bot" {
			t.Errorf("%s header = %q", agentHeader, r.Header.Get(agentHeader))
		}
		var f frame
		_ = json.NewDecoder(r.Body).Decode(&f)
		mu.Lock()
		versions[f.Method] = r.Header.Get(protocolVersionHeader)
		if f.Method == "tools/call" {
			versions["tools/call headers"] = r.Header.Get(methodHeader) + " " + r.Header.Get(nameHeader)
		}
		mu.Unlock()
		switch {
		case f.Method == "initialize":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(f.ID)+`,"result":{"protocolVersion":"2025-11-25","capabilities":{}}}`)
		case f.Method == "tools/list":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n")
			io.WriteString(w, ": keep-alive\n\nid: 2\ndata: {\"jsonrpc\": \"2.0\",\n")
			io.WriteString(w, "data:  \"id\":"+string(f.ID)+",\"result\":{\"tools\":[]}}\n\n")
		case f.Method == "slow":
			<-r.Context().Done() // until the client cancels
		case len(f.ID) == 0:
			w.WriteHeader(http.StatusAccepted)
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(f.ID)+`,"result":{}}`)
		}
	}))
	defer hs.Close()

	run := func(token, in string) []map[string]any {
		t.Helper()
		var out bytes.Buffer
		b := &Bridge{URL: hs.URL, Token: token, Agent: "bot"}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Run(ctx, strings.NewReader(in), &out); err != nil {
			t.Fatalf("Run: %v", err)
		}
		var msgs []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("output line is not one JSON message: %q", line)
			}
			msgs = append(msgs, m)
		}
		return msgs
	}
	byID := func(msgs []map[string]any) map[string]map[string]any {
		m := map[string]map[string]any{}
		for _, x := range msgs {
			if id, ok := x["id"]; ok {
				b, _ := json.Marshal(id)
				m[string(b)] = x
			}
		}
		return m
	}

	in := strings.Join([]string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`,
		`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"files__read","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
		`not json`,
		``,
	}, "\n")
	all := run("good", in)
	progress := 0
	for _, m := range all {
		if m["method"] == "notifications/progress" {
			progress++
		}
	}
	if progress != 1 {
		t.Errorf("%d progress notifications relayed, want 1", progress)
	}
	got := byID(all)
	if r, ok := got["1"]["result"].(map[string]any); !ok || r["protocolVersion"] != "2025-11-25" {
		t.Errorf("initialize answer: %v", got["1"])
	}
	if r, ok := got["2"]["result"].(map[string]any); !ok || r["tools"] == nil {
		t.Errorf("tools/list answer (over SSE, data split over lines): %v", got["2"])
	}
	if _, ok := got[`"x"`]["result"]; !ok {
		t.Errorf("tools/call answer: %v", got[`"x"`])
	}
	if e, ok := got["null"]["error"].(map[string]any); !ok || e["code"] != float64(codeParseError) {
		t.Errorf("a bad line: %v", got["null"])
	}
	mu.Lock()
	if versions["tools/list"] != "2025-11-25" || versions["tools/call"] != "2026-07-28" || versions["initialize"] != "" ||
		versions["tools/call headers"] != "tools/call files__read" {
		t.Errorf("protocol version headers: %v", versions)
	}
	mu.Unlock()

	// Refused: every request gets an error naming why; notifications none.
	msgs := run("bad", `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`+"\n"+`{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
	if len(msgs) != 1 {
		t.Fatalf("refused: %d messages, want 1: %v", len(msgs), msgs)
	}
	if e, _ := msgs[0]["error"].(map[string]any); e == nil || !strings.Contains(e["message"].(string), "401: unknown or revoked token") {
		t.Errorf("refused: %v", msgs[0])
	}

	// A cancelled request ends its POST and answers nothing.
	msgs = run("good", `{"jsonrpc":"2.0","id":9,"method":"slow"}`+"\n"+`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}}`+"\n")
	if len(msgs) != 0 {
		t.Errorf("cancelled request answered: %v", msgs)
	}

	// Unreachable.
	var out bytes.Buffer
	b := &Bridge{URL: "http://127.0.0.1:1/mcp", Token: "good"}
	_ = b.Run(context.Background(), strings.NewReader(`{"jsonrpc":"2.0","id":3,"method":"ping"}`+"\n"), &out)
	if !strings.Contains(out.String(), "cannot reach warden") || !strings.Contains(out.String(), `"id":3`) {
		t.Errorf("unreachable: %s", out.String())
	}
}

// TestBridgeOversizedFrame: a frame over maxFrame is answered with an
// error for its id (or null when the id cannot be found in its first
// bytes) and the bridge goes on relaying the next ones.
func TestBridgeOversizedFrame(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var f frame
		_ = json.NewDecoder(r.Body).Decode(&f)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(f.ID)+`,"result":{"ok":true}}`)
	}))
	defer hs.Close()
	big := strings.Repeat("A", maxFrame)
	in := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"a":"` + big + `"}}}` + "\n" +
		`{"jsonrpc":"2.0","method":"tools/call","params":{"arguments":{"a":"` + big + `"}},"id":"late"}` + "\n" +
		`{"jsonrpc":"2.0","id":8,"method":"ping"}` + "\n" +
		`{"jsonrpc":"2.0","id":9,"method":"ping","params":{"a":"` + big + `"}}` // the last line, no newline
	var out bytes.Buffer
	b := &Bridge{URL: hs.URL, Token: "t"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Run(ctx, strings.NewReader(in), &out); err != nil {
		t.Fatalf("Run: %v", err)
	}
	byID := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		id, _ := json.Marshal(m["id"])
		byID[string(id)] = m
	}
	for _, id := range []string{`7`, `null`, `9`} {
		e, _ := byID[id]["error"].(map[string]any)
		if e == nil || !strings.Contains(e["message"].(string), "longer than") {
			t.Errorf("id %s: %v, want a too-long error", id, byID[id])
		}
	}
	if r, _ := byID[`8`]["result"].(map[string]any); r == nil || r["ok"] != true {
		t.Errorf("the frame after the oversized ones was not relayed: %v", byID[`8`])
	}
}
