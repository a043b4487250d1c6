package dispatch

import (
	"errors"
	"fmt"
)

// Kind classifies a dispatch error; front ends map kinds to their own status
// codes (HTTP in internal/server, tool errors in MCP).
type Kind int

// Error kinds.
const (
	Invalid     Kind = iota + 1 // the request is wrong: unknown connector, bad args
	NotFound                    // no such call (or not the caller's)
	Forbidden                   // the caller may not do this
	Conflict                    // the call is not in a state that allows this
	Unavailable                 // warden cannot decide or audit right now: fail closed
)

// Error is an error with a kind, a stable code and a message safe to show to
// the caller (never a secret, never an internal detail).
type Error struct {
	Kind    Kind
	Code    string // e.g. "unknown_connector"
	Message string
	Err     error // the cause, for logs only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Store errors.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict: the call's stored status is not State.PrevStatus.
	ErrConflict = errors.New("call state changed concurrently")
)
