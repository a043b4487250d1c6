package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
)

// apiError is an error with the HTTP status and code it maps to. Message is
// shown to the caller and must be safe: no secrets, no internals.
type apiError struct {
	status  int
	code    string
	message string
	cause   error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.message + ": " + e.cause.Error()
	}
	return e.message
}

func (e *apiError) Unwrap() error { return e.cause }

func newError(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

// handlerFunc is an HTTP handler that returns its error instead of writing
// it; handle turns errors into responses in one place.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		ID      string `json:"id,omitempty"` // for server errors: find it in the logs
	} `json:"error"`
}

// handle adapts a handlerFunc: it maps a returned error to a status code and
// a JSON body, logs server errors with an id, and never leaks the cause.
func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				id := call.NewID("err", s.now())
				s.log.ErrorContext(r.Context(), "handler panic", "error_id", id, "method", r.Method, "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "internal", "internal error", id)
			}
		}()
		err := h(w, r)
		if err == nil {
			return
		}
		status, code, msg := classify(err)
		var id string
		if status >= 500 {
			id = call.NewID("err", s.now())
			s.log.ErrorContext(r.Context(), "request failed", "error_id", id, "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		} else {
			s.log.DebugContext(r.Context(), "request refused", "method", r.Method, "path", r.URL.Path, "status", status, "code", code)
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
		}
		writeError(w, status, code, msg, id)
	})
}

func classify(err error) (int, string, string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.code, ae.message
	}
	var de *dispatch.Error
	if errors.As(err, &de) {
		status := map[dispatch.Kind]int{
			dispatch.Invalid:     http.StatusBadRequest,
			dispatch.NotFound:    http.StatusNotFound,
			dispatch.Forbidden:   http.StatusForbidden,
			dispatch.Conflict:    http.StatusConflict,
			dispatch.Unavailable: http.StatusServiceUnavailable,
		}[de.Kind]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		return status, de.Code, de.Message
	}
	if errors.Is(err, context.Canceled) {
		return 499, "canceled", "request canceled"
	}
	return http.StatusInternalServerError, "internal", "internal error"
}

func writeError(w http.ResponseWriter, status int, code, msg, id string) {
	var b errorBody
	b.Error.Code, b.Error.Message, b.Error.ID = code, msg, id
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
