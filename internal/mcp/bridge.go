package mcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
)

// agentHeader names the agent a bridge was started for; /mcp refuses a
// token of another agent, so that a misplaced token cannot silently act
// as someone else.
const agentHeader = "X-Warden-Agent"

// maxFrame bounds one JSON-RPC frame the bridge relays, either way.
const maxFrame = 16 << 20

// protocolVersionHeader and metaProtocolVersion are where MCP carries the
// protocol version over HTTP and, from 2026-07-28 on, in every request.
const (
	protocolVersionHeader = "Mcp-Protocol-Version"
	sessionIDHeader       = "Mcp-Session-Id"
	methodHeader          = "Mcp-Method"
	nameHeader            = "Mcp-Name"
	metaProtocolVersion   = "io.modelcontextprotocol/protocolVersion"
)

// JSON-RPC error codes the bridge answers with.
const (
	codeParseError  = -32700
	codeServerError = -32000 // warden refused or could not be reached
)

// Bridge relays MCP over stdio (one JSON-RPC message per line, as MCP
// clients that launch a command speak it) to warden's /mcp endpoint, with
// the agent's token. It holds no tool logic: listing and calling happen on
// the server, the one place that decides.
type Bridge struct {
	URL    string // the /mcp endpoint, e.g. http://127.0.0.1:7070/mcp
	Token  string
	Agent  string       // sent in agentHeader; "": not checked
	Client *http.Client // nil: a client without a timeout (approval waits are long)
	Log    *slog.Logger

	mu       sync.Mutex // guards the fields below and writes to out
	out      io.Writer
	version  string // negotiated protocol version, once initialize answered
	session  string // Mcp-Session-Id, if the server ever sets one
	inflight map[string]context.CancelFunc
}

// frame is what the bridge reads of a message: enough to route it.
type frame struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// parseFrame reads one line from the client. It never panics; an error
// says what is wrong with the frame.
func parseFrame(line []byte) (*frame, error) {
	line = bytes.TrimSpace(line)
	if len(line) > 0 && line[0] == '[' {
		return nil, errors.New("JSON-RPC batches are not supported by MCP; send one message per line")
	}
	var f frame
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a JSON-RPC message: %v", err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value on a line")
	}
	if f.JSONRPC != "2.0" {
		return nil, fmt.Errorf("jsonrpc must be \"2.0\", got %q", f.JSONRPC)
	}
	if f.Method == "" && len(f.ID) == 0 {
		return nil, errors.New("neither a request (method) nor a response (id)")
	}
	if len(f.ID) > 0 {
		var id any
		if err := json.Unmarshal(f.ID, &id); err != nil {
			return nil, fmt.Errorf("bad id: %v", err)
		}
		switch id.(type) {
		case string, float64, nil:
		default:
			return nil, errors.New("id must be a string or a number")
		}
	}
	return &f, nil
}

// requestName is what the Mcp-Name header carries for a method that
// names something: a tool, a prompt, a resource.
func requestName(method string, params json.RawMessage) (string, bool) {
	var p struct {
		Name string `json:"name"`
		URI  string `json:"uri"`
	}
	if json.Unmarshal(params, &p) != nil {
		return "", false
	}
	switch method {
	case "tools/call", "prompts/get":
		return p.Name, true
	case "resources/read":
		return p.URI, true
	}
	return "", false
}

// metaVersion returns the protocol version a 2026-07-28 request carries
// in params._meta, or "".
func metaVersion(params json.RawMessage) string {
	if len(params) == 0 {
		return ""
	}
	var p struct {
		Meta map[string]any `json:"_meta"`
	}
	if json.Unmarshal(params, &p) != nil {
		return ""
	}
	v, _ := p.Meta[metaProtocolVersion].(string)
	return v
}

// Run relays between in/out and the server until in ends (then waits a
// moment for answers in flight) or ctx ends.
func (b *Bridge) Run(ctx context.Context, in io.Reader, out io.Writer) error {
	if b.Client == nil {
		b.Client = &http.Client{}
	}
	if b.Log == nil {
		b.Log = slog.New(slog.DiscardHandler)
	}
	b.out = out
	b.inflight = map[string]context.CancelFunc{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	rd := bufio.NewReaderSize(in, 64<<10)
	var err error
	for {
		line, tooLong, rerr := readFrame(rd, maxFrame)
		if rerr != nil && len(line) == 0 {
			if rerr != io.EOF {
				err = rerr
			}
			break
		}
		if tooLong {
			// Refused, and the bridge goes on: the request gets its
			// error if its id comes early enough in the frame to read.
			b.writeError(frameID(line), codeServerError, fmt.Sprintf("message longer than %d bytes: not relayed", maxFrame))
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f, err := parseFrame(line)
		if err != nil {
			b.writeError(json.RawMessage("null"), codeParseError, err.Error())
			continue
		}
		if f.Method == "notifications/cancelled" {
			b.cancelRequest(f.Params)
			continue // the request's own POST ends; nothing to forward
		}
		if f.Method == "initialize" {
			// One bridge, one client: forget what an earlier session set.
			b.mu.Lock()
			b.version, b.session = "", ""
			b.mu.Unlock()
		}
		body := bytes.Clone(line)
		rctx, rcancel := context.WithCancel(ctx)
		key := ""
		if f.Method != "" && len(f.ID) > 0 {
			key = string(f.ID)
			b.mu.Lock()
			b.inflight[key] = rcancel
			b.mu.Unlock()
		}
		// The initialize exchange must finish before anything else goes
		// out, since it sets the protocol version later requests carry.
		if f.Method == "initialize" {
			b.post(rctx, f, body)
			b.done(key, rcancel)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer b.done(key, rcancel)
			b.post(rctx, f, body)
		}()
	}
	// stdin closed: the client is leaving. Answers in flight get a moment.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		cancel()
		<-done
	case <-ctx.Done():
		<-done
	}
	return err
}

// idPrefix is how much of an oversized frame is kept to find its id in.
const idPrefix = 64 << 10

// readFrame reads one line (without its newline). A line longer than max
// is read to its end and dropped: tooLong is set and line holds its first
// idPrefix bytes. err is the reader's (io.EOF at the end), with whatever
// came before it in line.
func readFrame(rd *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := rd.ReadSlice('\n')
		if !tooLong {
			line = append(line, chunk...)
			if len(bytes.TrimSuffix(line, []byte("\n"))) > max {
				tooLong = true
				line = line[:idPrefix:idPrefix] // max > idPrefix
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimSuffix(line, []byte("\n")), tooLong, err
	}
}

// frameID recovers the id of a frame from its first bytes: the value of
// the top-level "id" key if it comes before the cut, else null.
func frameID(prefix []byte) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(prefix))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return json.RawMessage("null")
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			break
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			break
		}
		if k == "id" {
			var id any
			if json.Unmarshal(v, &id) == nil {
				switch id.(type) {
				case string, float64:
					return v
				}
			}
			break
		}
	}
	return json.RawMessage("null")
}

func (b *Bridge) done(key string, cancel context.CancelFunc) {
	cancel()
	if key == "" {
		return
	}
	b.mu.Lock()
	delete(b.inflight, key)
	b.mu.Unlock()
}

// cancelRequest ends the POST of a request the client cancelled.
func (b *Bridge) cancelRequest(params json.RawMessage) {
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(params, &p) != nil || len(p.RequestID) == 0 {
		return
	}
	b.mu.Lock()
	c := b.inflight[string(p.RequestID)]
	b.mu.Unlock()
	if c != nil {
		c()
	}
}

// post sends one message and relays what comes back.
func (b *Bridge) post(ctx context.Context, f *frame, body []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.URL, bytes.NewReader(body))
	if err != nil {
		b.fail(f, "bad --server URL: "+err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+b.Token)
	if b.Agent != "" {
		req.Header.Set(agentHeader, b.Agent)
	}
	b.mu.Lock()
	version, session := b.version, b.session
	b.mu.Unlock()
	if v := metaVersion(f.Params); v != "" {
		version = v
	}
	if version != "" {
		req.Header.Set(protocolVersionHeader, version)
	}
	if version >= "2026-07-28" && f.Method != "" && len(f.ID) > 0 {
		// The standard headers of the 2026-07-28 transport, which the
		// server checks against the body.
		req.Header.Set(methodHeader, f.Method)
		if name, ok := requestName(f.Method, f.Params); ok {
			req.Header.Set(nameHeader, name)
		}
	}
	if session != "" {
		req.Header.Set(sessionIDHeader, session)
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return // cancelled by the client, or shutting down
		}
		b.fail(f, "cannot reach warden: "+err.Error())
		return
	}
	defer resp.Body.Close()
	if sid := resp.Header.Get(sessionIDHeader); sid != "" {
		b.mu.Lock()
		b.session = sid
		b.mu.Unlock()
	}
	if resp.StatusCode == http.StatusAccepted {
		return
	}
	if resp.StatusCode/100 != 2 {
		b.fail(f, httpError(resp))
		return
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	relay := func(data []byte) error {
		if f.Method == "initialize" {
			b.noteVersion(data)
		}
		return b.write(data)
	}
	switch mt {
	case "text/event-stream":
		err = readSSE(resp.Body, maxFrame, relay)
	case "application/json":
		var data []byte
		data, err = io.ReadAll(io.LimitReader(resp.Body, maxFrame+1))
		if err == nil && len(data) > maxFrame {
			err = fmt.Errorf("an answer longer than %d bytes", maxFrame)
		}
		if err == nil && len(bytes.TrimSpace(data)) > 0 {
			err = relay(data)
		}
	default:
		err = fmt.Errorf("unexpected answer of type %q", mt)
	}
	if err != nil && ctx.Err() == nil {
		b.fail(f, "reading warden's answer: "+err.Error())
	}
}

// noteVersion remembers the protocol version initialize negotiated.
func (b *Bridge) noteVersion(data []byte) {
	var r struct {
		Result struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
	}
	if json.Unmarshal(data, &r) == nil && r.Result.ProtocolVersion != "" {
		b.mu.Lock()
		b.version = r.Result.ProtocolVersion
		b.mu.Unlock()
	}
}

// httpError describes a refused request: warden's own JSON error message
// when there is one.
func httpError(resp *http.Response) string {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	return fmt.Sprintf("warden answered %d: %s", resp.StatusCode, msg)
}

// fail answers a request the server did not: a JSON-RPC error for a
// request, a log line for a notification or response.
func (b *Bridge) fail(f *frame, msg string) {
	if f.Method != "" && len(f.ID) > 0 {
		b.writeError(f.ID, codeServerError, msg)
		return
	}
	b.Log.Warn("mcp bridge: message not delivered", "method", f.Method, "err", msg)
}

func (b *Bridge) writeError(id json.RawMessage, code int, msg string) {
	data, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": id,
		"error": map[string]any{"code": code, "message": msg},
	})
	_ = b.write(data)
}

// write sends one message to the client on one line.
func (b *Bridge) write(data []byte) error {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return fmt.Errorf("the server sent invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.out.Write(buf.Bytes())
	return err
}
