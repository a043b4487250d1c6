package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/dispatch"
)

// progressEvery is how often a client waiting on an approval hears that
// the call still waits (when it sent a progressToken).
const progressEvery = 2 * time.Second

// callTool runs tools/call through the dispatcher. Every outcome is a tool
// result: a refusal, an error or a pending approval is isError with the
// reason, so that the model reads it.
func (s *Server) callTool(ctx context.Context, p call.Principal, r *sdk.CallToolRequest) *sdk.CallToolResult {
	snap := s.d.Snapshot()
	// A listed name parses back to the action it was listed for (permitted
	// lists no other); any other name is parsed too, and then decided,
	// refused and audited like any call.
	connector, action, ok := parseToolName(r.Params.Name, isConnector(snap))
	if !ok {
		// Still dispatched, so that it is decided and audited like any
		// other call: the dispatcher refuses an unknown connector.
		connector, action = r.Params.Name, ""
		if c, a, found := strings.Cut(r.Params.Name, separator); found {
			connector, action = c, a
		}
	}
	raw := r.Params.Arguments
	if string(bytes.TrimSpace(raw)) == "null" {
		raw = nil // a client that sends no arguments as null
	}
	args, err := call.DecodeArgs(raw)
	if err != nil {
		return errorResult("invalid arguments: %v", err)
	}
	st, err := s.d.Call(ctx, p, dispatch.Request{Connector: connector, Action: action, Args: args, FrontEnd: audit.FrontEndMCP})
	if err != nil {
		return dispatchError(err)
	}
	if st.Status == dispatch.StatusPending && s.wait > 0 {
		st, err = s.awaitApproval(ctx, p, r, st)
		if err != nil {
			return dispatchError(err)
		}
	}
	return s.result(snap, st)
}

// awaitApproval waits up to s.wait for a human to decide, telling a client
// that asked for progress (a progressToken) every few seconds.
func (s *Server) awaitApproval(ctx context.Context, p call.Principal, r *sdk.CallToolRequest, st *dispatch.State) (*dispatch.State, error) {
	token := r.Params.GetProgressToken()
	deadline := time.Now().Add(s.wait)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.draining:
			cancel()
		case <-ctx.Done():
		}
	}()
	for n := 1; ; n++ {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return st, nil
		}
		step := left
		if token != nil && step > progressEvery {
			step = progressEvery
		}
		next, err := s.d.Wait(ctx, p, st.ID, step)
		if ctx.Err() != nil {
			// Drained or the client went away: the state as it is now.
			return s.d.Wait(context.WithoutCancel(ctx), p, st.ID, 0)
		}
		if err != nil {
			return nil, err
		}
		st = next
		if st.Status != dispatch.StatusPending && st.Status != dispatch.StatusApproved && st.Status != dispatch.StatusRunning {
			return st, nil
		}
		if token != nil && r.Session != nil {
			msg := "waiting for a human to approve"
			if st.Approval != nil {
				msg += " (approval " + st.Approval.ID + ")"
			}
			if st.Status != dispatch.StatusPending {
				msg = "approved; running"
			}
			// Best effort: a client that cannot hear it still gets the result.
			_ = r.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{
				ProgressToken: token, Progress: float64(n), Message: msg,
			})
		}
	}
}

// result turns a call's final (or still pending) state into a tool
// result. Everything in st has been redacted by the dispatcher.
func (s *Server) result(snap *dispatch.Snapshot, st *dispatch.State) *sdk.CallToolResult {
	switch st.Status {
	case dispatch.StatusRefused:
		msg := "denied by warden: " + st.Reason
		if st.Error != "" && st.Decision != call.Deny {
			msg = "refused by warden: " + st.Error
		}
		return &sdk.CallToolResult{IsError: true, Content: text(msg),
			StructuredContent: map[string]any{"call_id": st.ID, "decision": st.Decision, "status": st.Status, "rules": st.Rules, "reason": st.Reason}}
	case dispatch.StatusExpired:
		return &sdk.CallToolResult{IsError: true, Content: text("not run: nobody approved the call in time (call " + st.ID + ")"),
			StructuredContent: map[string]any{"call_id": st.ID, "status": st.Status}}
	case dispatch.StatusPending, dispatch.StatusApproved, dispatch.StatusRunning:
		sc := map[string]any{"call_id": st.ID, "status": st.Status, "decision": st.Decision, "reason": st.Reason}
		msg := fmt.Sprintf("not run yet: the call waits for human approval (call %s", st.ID)
		if st.Approval != nil {
			sc["approval_id"] = st.Approval.ID
			msg += ", approval " + st.Approval.ID
		}
		msg += "). It runs once approved; its result is then at GET /v1/calls/" + st.ID + "."
		if st.Status != dispatch.StatusPending {
			msg = fmt.Sprintf("approved and still running (call %s); its result will be at GET /v1/calls/%s.", st.ID, st.ID)
		}
		return &sdk.CallToolResult{IsError: true, Content: text(msg), StructuredContent: sc}
	}
	// Succeeded or failed: the connector ran.
	if conn, ok := snap.Engine.Connector(st.Connector); ok && conn.Type == config.TypeMCP && len(st.Result) > 0 {
		var up sdk.CallToolResult
		if err := json.Unmarshal(st.Result, &up); err == nil {
			if st.Status == dispatch.StatusFailed {
				up.IsError = true
			}
			return &up
		}
	}
	if st.Status == dispatch.StatusFailed {
		msg := "the call failed: " + st.Error
		out := &sdk.CallToolResult{IsError: true, Content: text(msg)}
		if len(st.Result) > 0 {
			out.Content = append(out.Content, &sdk.TextContent{Text: string(st.Result)})
		}
		return out
	}
	out := &sdk.CallToolResult{Content: text(string(st.Result))}
	if len(st.Result) == 0 {
		out.Content = text("done")
	}
	var obj map[string]any
	if json.Unmarshal(st.Result, &obj) == nil && obj != nil {
		out.StructuredContent = obj
	}
	return out
}

// dispatchError is a tool result for an error of the dispatch path: the
// dispatcher's message says what went wrong in the agent's terms.
func dispatchError(err error) *sdk.CallToolResult {
	var de *dispatch.Error
	if errors.As(err, &de) {
		return errorResult("refused by warden (%s): %s", de.Code, de.Message)
	}
	return errorResult("refused by warden: the call could not be run")
}

func errorResult(format string, args ...any) *sdk.CallToolResult {
	return &sdk.CallToolResult{IsError: true, Content: text(fmt.Sprintf(format, args...))}
}

func text(s string) []sdk.Content { return []sdk.Content{&sdk.TextContent{Text: s}} }
