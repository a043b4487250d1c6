package dispatch

// Notifier announces new approval requests to humans (Slack, webhooks).
// Pending is called after the request is durable and must not block the
// call: implementations queue and deliver in the background, and a
// delivery failure never fails the call.
type Notifier interface {
	Pending(v ApprovalView)
}

// RedactedView is View with the args, result, reason and error scrubbed as
// they are in the audit trail: what may leave warden in a notification or
// a chat message.
func (d *Dispatcher) RedactedView(st *State) ApprovalView {
	v := View(st)
	v.Args = jsonRaw(d.redactJSON(st.Args))
	v.Result = jsonRaw(d.redactJSON(st.Result))
	v.Reason = d.redact(v.Reason)
	v.Error = d.redact(v.Error)
	return v
}

// announce tells the notifier about a call that now waits for a human.
func (d *Dispatcher) announce(st *State) {
	if d.notifier == nil || st.Status != StatusPending || st.Approval == nil {
		return
	}
	d.notifier.Pending(d.RedactedView(st))
}
