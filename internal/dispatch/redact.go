package dispatch

import "encoding/json"

// Redactor scrubs secrets (resolved credential values in every encoding,
// well-known token shapes) from text. The dispatcher runs it over a call's
// args, reason, result and error before any of them is recorded in the
// audit trail or the call's state, or returned to the agent. secret.Redactor
// implements it.
type Redactor interface {
	Redact(s string) string
	// RedactJSON returns a valid JSON document for a valid one.
	RedactJSON(doc []byte) []byte
}

func (d *Dispatcher) redact(s string) string {
	if d.redactor == nil || s == "" {
		return s
	}
	return d.redactor.Redact(s)
}

func (d *Dispatcher) redactJSON(doc json.RawMessage) json.RawMessage {
	if d.redactor == nil || len(doc) == 0 {
		return doc
	}
	return d.redactor.RedactJSON(doc)
}
