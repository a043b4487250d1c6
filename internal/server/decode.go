package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
)

// callRequest is the body of POST /v1/calls and POST /v1/decide.
type callRequest struct {
	Connector   string          `json:"connector"`
	Action      string          `json:"action"`
	Args        json.RawMessage `json:"args"`
	Environment string          `json:"environment"`
	RunID       string          `json:"run_id"`
	Trigger     string          `json:"trigger"`
	Wait        string          `json:"wait"` // a duration such as "30s"; POST /v1/calls only
	// FrontEnd is rest (the default) or hook: a runtime's tool hook, such as
	// `warden hook claude-code`, asking POST /v1/decide. A hook's
	// REQUIRE_APPROVAL is put to the runtime's own user, not to warden's
	// approvers.
	FrontEnd string `json:"front_end"`

	args map[string]any
	wait time.Duration
}

// maxWait bounds how long one request may block waiting on a call.
const maxWait = 5 * time.Minute

// decodeJSON reads a JSON object body strictly: JSON content type, at most
// limit bytes, no unknown fields, nothing after the object. Errors name the
// field that was wrong.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newError(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body exceeds %d bytes", limit))
		}
		return newError(http.StatusBadRequest, "bad_body", "could not read the request body")
	}
	return decodeBody(body, dst)
}

// decodeBody is decodeJSON's parser, separate so that it can be fuzzed.
func decodeBody(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return newError(http.StatusBadRequest, "invalid_json", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return newError(http.StatusBadRequest, "invalid_json", "unexpected data after the JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return fmt.Sprintf("the body must be a JSON object, not %s", te.Value)
		}
		return fmt.Sprintf("%s: must be %s, not %s", te.Field, jsonType(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.EOF):
		return "empty body; expected a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Sprintf("unknown field %s", f)
	}
	return "malformed JSON: " + strings.TrimPrefix(msg, "json: ")
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	case "bool":
		return "a boolean"
	}
	return "a number"
}

// validate checks the fields and parses args and wait.
func (c *callRequest) validate(allowWait bool) error {
	switch {
	case c.Connector == "":
		return newError(http.StatusBadRequest, "missing_field", "connector: required")
	case c.Action == "":
		return newError(http.StatusBadRequest, "missing_field", "action: required")
	}
	if len(c.Args) > 0 && !bytes.Equal(bytes.TrimSpace(c.Args), []byte("null")) {
		args, err := call.DecodeArgs(c.Args)
		if err != nil {
			return newError(http.StatusBadRequest, "invalid_args", "args: must be a JSON object")
		}
		c.args = args
	} else {
		c.args = map[string]any{}
	}
	if c.Wait != "" {
		if !allowWait {
			return newError(http.StatusBadRequest, "invalid_field", "wait: only POST /v1/calls waits")
		}
		d, err := time.ParseDuration(c.Wait)
		if err != nil || d < 0 {
			return newError(http.StatusBadRequest, "invalid_field", "wait: must be a duration such as 30s")
		}
		c.wait = min(d, maxWait)
	}
	switch c.FrontEnd {
	case "", audit.FrontEndREST:
		c.FrontEnd = audit.FrontEndREST
	case audit.FrontEndHook:
		if allowWait {
			return newError(http.StatusBadRequest, "invalid_field", "front_end: hooks ask POST /v1/decide, not POST /v1/calls")
		}
	default:
		return newError(http.StatusBadRequest, "invalid_field", "front_end: must be rest or hook (MCP clients use /mcp)")
	}
	return nil
}
