package server

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestDecodeCall(t *testing.T) {
	tests := []struct {
		body string
		want string // "" = ok; else a substring of the message
	}{
		{`{"connector":"c","action":"a"}`, ""},
		{`{"connector":"c","action":"a","args":{"n":1,"f":1.5,"s":"x"},"environment":"prod","run_id":"r","wait":"5s"}`, ""},
		{`{"connector":"c","action":"a","args":null}`, ""},
		{``, "empty body"},
		{`{`, "malformed JSON"},
		{`[]`, "must be a JSON object"},
		{`{"connector":"c","action":"a"} {}`, "after the JSON object"},
		{`{"connector":1,"action":"a"}`, "connector: must be a string"},
		{`{"connector":"c","action":"a","args":[1]}`, "args: must be a JSON object"},
		{`{"connector":"c","action":"a","args":"x"}`, "args: must be a JSON object"},
		{`{"connector":"c","action":"a","extra":1}`, `unknown field "extra"`},
		{`{"action":"a"}`, "connector: required"},
		{`{"connector":"c"}`, "action: required"},
		{`{"connector":"c","action":"a","wait":"soon"}`, "wait: must be a duration"},
		{`{"connector":"c","action":"a","args":{"n":1e999}}`, "args: must be a JSON object"},
		{`{"connector":"c","action":"a","front_end":"rest"}`, ""},
		{`{"connector":"c","action":"a","front_end":"mcp"}`, "front_end: must be rest or hook"},
		{`{"connector":"c","action":"a","front_end":"hook"}`, "front_end: hooks ask POST /v1/decide"}, // validate(true): POST /v1/calls
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			var req callRequest
			err := decodeBody([]byte(tt.body), &req)
			if err == nil {
				err = req.validate(true)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || !strings.Contains(ae.message, tt.want) {
				t.Errorf("err = %v, want 400 mentioning %q", err, tt.want)
			}
		})
	}
}

// FuzzDecodeCall: the request decoder never panics, and every rejection is a
// 400 with a message.
func FuzzDecodeCall(f *testing.F) {
	for _, s := range []string{
		`{"connector":"c","action":"a","args":{"x":[1,{"y":null}]}}`,
		`{"connector":"c","action":"a","wait":"1s","args":{"n":12345678901234567890}}`,
		`{"connector":"\u0000","action":"a"}`, `{}`, `null`, `{"args":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req callRequest
		err := decodeBody(data, &req)
		if err == nil {
			err = req.validate(true)
		}
		if err == nil {
			if req.args == nil || req.Connector == "" || req.Action == "" {
				t.Fatalf("accepted an incomplete request: %+v", req)
			}
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || ae.message == "" {
			t.Fatalf("rejection is not a 400 with a message: %v", err)
		}
	})
}
