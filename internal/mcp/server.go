// Package mcp is warden's MCP front end: the Streamable HTTP endpoint
// (/mcp) that shows an agent its permitted connector actions as MCP tools
// and runs tools/call through the one dispatch path, and the stdio bridge
// behind `warden mcp --agent A` (bridge.go), which relays a client's frames
// to that endpoint with the agent's token.
//
// It speaks MCP with the official Go SDK, in its stateless mode, so that
// both protocol versions work on one endpoint: 2025-11-25 (initialize
// handshake; the SDK answers it for every request) and 2026-07-28 (no
// handshake, _meta on every request). What tools exist, and what a call
// does, is decided here from the dispatcher's current snapshot on every
// request: a config reload changes the next tools/list.
//
// Nothing here decides or executes: tools/call is dispatch.Dispatcher.Call
// with front end "mcp". Upstream MCP servers (the mcp connector) live in
// internal/connector/mcp.
package mcp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
)

// DefaultWait is how long tools/call holds a call that waits for a human
// before answering that it is pending: serve's --mcp-wait default.
const DefaultWait = 60 * time.Second

// implementation names warden to MCP clients.
var implementation = &sdk.Implementation{Name: "warden", Title: "warden", Version: "1"}

// Options configure a Server.
type Options struct {
	Dispatcher *dispatch.Dispatcher
	// Wait bounds how long tools/call waits for an approval before it
	// answers "pending"; 0 (or negative): do not wait.
	Wait   time.Duration
	Logger *slog.Logger
	// MaxBody bounds a request body; 0: the SDK's default (4 MiB).
	MaxBody int64
}

// Server serves MCP for authenticated agents.
type Server struct {
	d       *dispatch.Dispatcher
	wait    time.Duration
	log     *slog.Logger
	sdk     *sdk.Server
	handler *sdk.StreamableHTTPHandler

	draining  chan struct{} // closed by Drain
	drainOnce sync.Once
	skips     sync.Map // tools left out of tools/list already logged (skipped)
}

// Drain ends every approval wait, now and from now on: each answers that
// its call is pending, so that shutdown does not wait on humans. Register
// it with http.Server.RegisterOnShutdown.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// principalKey is where the authenticated principal travels inside the
// SDK's token info.
const principalKey = "warden.principal"

// New returns an MCP server.
func New(o Options) *Server {
	s := &Server{d: o.Dispatcher, wait: o.Wait, log: o.Logger, draining: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.sdk = sdk.NewServer(implementation, &sdk.ServerOptions{
		Instructions: "warden governs these tools: every call is decided by policy, may wait for a human approver, and is audited. " +
			"Tool names are <connector>__<action>.",
		Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{}},
		Logger:       s.log,
	})
	// tools/list and tools/call are answered here, per principal, from the
	// live snapshot; everything else (initialize, ping, discovery) is the
	// SDK's.
	s.sdk.AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			switch method {
			case "tools/list", "tools/call":
			default:
				return next(ctx, method, req)
			}
			p, ok := principalOf(req)
			if !ok {
				// Unreachable through ServeMCP; fail closed all the same.
				return nil, errors.New("unauthenticated")
			}
			if method == "tools/list" {
				return s.listTools(ctx, p), nil
			}
			r, ok := req.(*sdk.CallToolRequest)
			if !ok || r.Params == nil {
				return nil, errors.New("tools/call: missing params")
			}
			return s.callTool(ctx, p, r), nil
		}
	})
	s.handler = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s.sdk }, &sdk.StreamableHTTPOptions{
		Stateless:                    true,
		Logger:                       s.log,
		MaxRequestBodyBytes:          o.MaxBody,
		PropagateRequestCancellation: true,
		// The token is the protection: the endpoint serves remote
		// clients behind proxies, whose Host is not localhost.
		DisableLocalhostProtection: true,
	})
	return s
}

// ServeMCP serves one MCP HTTP request for an authenticated agent. It
// returns an error, for the server's one error mapper to answer, only
// before the SDK has written anything: a request naming another agent in
// agentHeader than the token's.
func (s *Server) ServeMCP(w http.ResponseWriter, r *http.Request, p call.Principal) error {
	if a := r.Header.Get(agentHeader); a != "" && a != p.Agent {
		return &dispatch.Error{Kind: dispatch.Forbidden, Code: "wrong_agent",
			Message: "the token is not the token of the agent named in " + agentHeader}
	}
	verify := func(context.Context, string, *http.Request) (*auth.TokenInfo, error) {
		return &auth.TokenInfo{UserID: p.Identity(), Expiration: time.Now().Add(time.Hour), Extra: map[string]any{principalKey: p}}, nil
	}
	auth.RequireBearerToken(verify, nil)(s.handler).ServeHTTP(w, r)
	return nil
}

func principalOf(req sdk.Request) (call.Principal, bool) {
	extra := req.GetExtra()
	if extra == nil || extra.TokenInfo == nil {
		return call.Principal{}, false
	}
	p, ok := extra.TokenInfo.Extra[principalKey].(call.Principal)
	return p, ok && p.Role == call.RoleAgent && p.Agent != ""
}
