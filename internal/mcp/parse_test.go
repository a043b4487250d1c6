package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseToolName(t *testing.T) {
	known := map[string]bool{"files": true, "a__b": true, "a": true, "git.hub": true}
	is := func(c string) bool { return known[c] }
	for _, tc := range []struct {
		name, conn, action string
		ok                 bool
	}{
		{"files__read_text_file", "files", "read_text_file", true},
		{"files__a__b", "files", "a__b", true}, // an action may hold the separator
		{"a__b__c", "a__b", "c", true},         // the longest known connector wins
		{"a__x__c", "a", "x__c", true},
		{"git.hub__create_pr", "git.hub", "create_pr", true},
		{"files__", "", "", false},
		{"__files", "", "", false},
		{"files", "", "", false},
		{"unknown__x", "", "", false},
		{"", "", "", false},
		{"files_read", "", "", false},
		{strings.Repeat("a", 600) + "__x", "", "", false},
	} {
		c, a, ok := parseToolName(tc.name, is)
		if c != tc.conn || a != tc.action || ok != tc.ok {
			t.Errorf("parseToolName(%q) = %q, %q, %v; want %q, %q, %v", tc.name, c, a, ok, tc.conn, tc.action, tc.ok)
		}
	}
}

func FuzzParseToolName(f *testing.F) {
	for _, s := range []string{"files__read", "a__b__c", "__", "____", "x__", "files__a__b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		is := func(c string) bool { return c == "files" || c == "a__b" || c == "a" }
		c, a, ok := parseToolName(name, is)
		if !ok {
			return
		}
		if toolName(c, a) != name || !is(c) || a == "" {
			t.Fatalf("parseToolName(%q) = %q, %q: does not round-trip", name, c, a)
		}
	})
}

func TestReadSSE(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		err      bool
	}{
		{"one event", "event: message\ndata: {\"a\":1}\n\n", []string{`{"a":1}`}, false},
		{"crlf and id", "id: 7\r\ndata: x\r\n\r\n", []string{"x"}, false},
		{"multi-line data", "data: a\ndata: b\n\n", []string{"a\nb"}, false},
		{"comments and retry", ": ping\nretry: 100\n\ndata: y\n\n", []string{"y"}, false},
		{"no final blank line", "data: z", []string{"z"}, false},
		{"no space after colon", "data:q\n\n", []string{"q"}, false},
		{"empty events skipped", "\n\n\nevent: x\n\n", nil, false},
		{"two events", "data: 1\n\ndata: 2\n\n", []string{"1", "2"}, false},
		{"too long", "data: " + strings.Repeat("x", 200) + "\n\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := readSSE(strings.NewReader(tc.in), 100, func(d []byte) error { got = append(got, string(d)); return nil })
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	stop := errors.New("stop")
	if err := readSSE(strings.NewReader("data: 1\n\ndata: 2\n\n"), 100, func([]byte) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error not returned: %v", err)
	}
}

func FuzzReadSSE(f *testing.F) {
	for _, s := range []string{"data: {}\n\n", "event: message\r\ndata: a\r\ndata: b\r\n\r\n", ": c\n", "data", "data:\n\n\n", "\r\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		total := 0
		err := readSSE(bytes.NewReader(in), 256, func(d []byte) error {
			if len(d) > 256 {
				t.Fatalf("event of %d bytes passed a 256-byte limit", len(d))
			}
			total += len(d)
			return nil
		})
		if err == nil && total > len(in) {
			t.Fatalf("more data (%d) than input (%d)", total, len(in))
		}
	})
}

func TestParseFrame(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, ""},
		{`{"jsonrpc":"2.0","id":"a","result":{}}`, ""},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, ""},
		{`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, "batches"},
		{`{"jsonrpc":"1.0","id":1,"method":"ping"}`, "jsonrpc must be"},
		{`{"jsonrpc":"2.0"}`, "neither a request"},
		{`{"jsonrpc":"2.0","id":{},"method":"x"}`, "id must be"},
		{`{"jsonrpc":"2.0","id":1,"method":"x"} {}`, "more than one"},
		{`nope`, "not a JSON-RPC message"},
	} {
		_, err := parseFrame([]byte(tc.in))
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseFrame(%s) = %v, want error containing %q", tc.in, err, tc.err)
		}
	}
}

func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a__b","arguments":{},"_meta":{"progressToken":1,"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		`[]`, `{}`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fr, err := parseFrame(in)
		if err != nil {
			return
		}
		_ = metaVersion(fr.Params)
		if fr.Method == "" && len(fr.ID) == 0 {
			t.Fatal("accepted a frame that is neither request nor response")
		}
		if len(fr.ID) > 0 && !json.Valid(fr.ID) {
			t.Fatalf("accepted invalid id %q", fr.ID)
		}
	})
}
