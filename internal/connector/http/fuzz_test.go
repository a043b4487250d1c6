package http

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeBody: no response body makes decoding panic, and whatever comes
// back can be written as JSON (the dispatcher records and returns it).
func FuzzDecodeBody(f *testing.F) {
	f.Add("application/json", []byte(`{"a":[1,2.5,"x",null,true],"b":{"c":1e400}}`), false)
	f.Add("application/problem+json; charset=utf-8", []byte(`{"title":"x"}`), false)
	f.Add("text/plain", []byte("a\xffb"), false)
	f.Add("application/json", []byte(`{"a":`), true)
	f.Add("", []byte(nil), false)
	f.Fuzz(func(t *testing.T, contentType string, body []byte, truncated bool) {
		v := decodeBody(contentType, body, truncated)
		if s, ok := v.(string); ok && !utf8.ValidString(s) {
			t.Fatalf("decodeBody returned invalid UTF-8 %q", s)
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("decodeBody(%q, %q) = %#v, which does not marshal: %v", contentType, body, v, err)
		}
	})
}
