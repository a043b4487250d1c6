package config

import (
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/warden-dev/warden/internal/connector/template"
	"go.yaml.in/yaml/v3"
)

// MCPConnector holds the mcp type's own keys: an upstream MCP server
// launched as a command (stdio) or reached at a URL (Streamable HTTP).
// Env values and headers are templates that may name only
// {credentials.NAME}: they are rendered once per upstream session, not per
// call.
type MCPConnector struct {
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Timeout bounds one tools/call (and the session start); 0: the
	// connector's default (30s).
	Timeout Duration `json:"timeout,omitempty"`
}

// mcpToolName is what an upstream tool name must look like to become an
// action (MCP's own rule for tool names).
var mcpToolName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// envName is a POSIX-ish environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// mcpKeys collects the mcp type's keys of one connector document while it
// is read; checkMCP validates them once the type is known.
type mcpKeys struct {
	m     MCPConnector
	nodes []*yaml.Node // every mcp key's value node, for "wrong type" errors
	uses  []credUse
	// headerRefs are the errors of headers that name more than
	// credentials: reported by checkMCP if the connector is of type mcp
	// (headers are read before the type may be known).
	headerRefs []*Error
}

// mcpFields are the mcp type's keys in a connector document.
func (d *decoder) mcpFields(k *mcpKeys) []field {
	mk := func(key string, set func(v *yaml.Node)) field {
		return field{key: key, set: func(v *yaml.Node) { k.nodes = append(k.nodes, v); set(v) }}
	}
	creds := func(what string) func(kn, vn *yaml.Node, s string) {
		return func(kn, vn *yaml.Node, s string) {
			k.uses = append(k.uses, d.credentialTemplate(vn, s, what+"."+kn.Value)...)
		}
	}
	return []field{
		mk("command", func(v *yaml.Node) { k.m.Command, _ = d.str(v, "command") }),
		mk("args", func(v *yaml.Node) { k.m.Args = d.strList(v, "args") }),
		mk("env", func(v *yaml.Node) {
			k.m.Env = d.stringMap(v, "env", func(kn, vn *yaml.Node, s string) {
				if !envName.MatchString(kn.Value) {
					d.errorf(kn, "env: %q is not a valid environment variable name", kn.Value)
				}
				creds("env")(kn, vn, s)
			})
		}),
		mk("url", func(v *yaml.Node) { k.m.URL, _ = d.str(v, "url") }),
	}
}

// credentialTemplate checks a template that may name credentials but not
// the call's args.
func (d *decoder) credentialTemplate(n *yaml.Node, s, what string) []credUse {
	t, err := template.Parse(s)
	if err != nil {
		d.errorf(n, "%s: %v", what, err)
		return nil
	}
	if e := d.onlyCredentials(n, t, what); e != nil {
		*d.errs = append(*d.errs, e)
		return nil
	}
	return d.credUses(n, t)
}

// headerTemplate reads one value of a connector's headers, of whatever
// type: a template whose credentials it returns. Only an mcp connector's
// may name nothing but credentials; that error is kept in k, at the
// header's own position, for checkMCP.
func (d *decoder) headerTemplate(k *mcpKeys, n *yaml.Node, s, what string) []credUse {
	t, err := template.Parse(s)
	if err != nil {
		d.errorf(n, "%s: %v", what, err)
		return nil
	}
	if e := d.onlyCredentials(n, t, what); e != nil {
		k.headerRefs = append(k.headerRefs, e)
	}
	return d.credUses(n, t)
}

// onlyCredentials is the error of a template set once per upstream
// session that names anything but credentials; nil if it names none.
func (d *decoder) onlyCredentials(n *yaml.Node, t *template.Template, what string) *Error {
	for _, r := range t.Refs() {
		if r.Kind != template.Credential {
			return &Error{Pos: d.pos(n), Msg: fmt.Sprintf("%s: %s is not allowed here: an mcp connector's env and headers are set once per upstream session, so only {credentials.NAME} may be used", what, r)}
		}
	}
	return nil
}

func (d *decoder) credUses(n *yaml.Node, t *template.Template) []credUse {
	var uses []credUse
	for _, name := range t.Credentials() {
		uses = append(uses, credUse{pos: d.pos(n), name: name})
	}
	return uses
}

// checkMCP finishes an mcp connector: at most one of command and url
// (neither: decide-only, c.MCP stays nil), headers only with url, no
// http-only keys.
func (d *decoder) checkMCP(n *yaml.Node, c *Connector, k *mcpKeys, h *HTTPConnector, httpKeys []*yaml.Node) {
	m := k.m
	m.Timeout = h.Timeout
	if len(h.Headers) > 0 {
		m.Headers = h.Headers
		// Parsed, and their credentials collected, as they were read
		// (headerTemplate); an mcp connector's may name nothing else.
		*d.errs = append(*d.errs, k.headerRefs...)
	}
	if c.BaseURL != "" || len(h.AllowHosts) > 0 {
		for _, hn := range httpKeys {
			if hn != nil {
				d.errorf(n, "connector type mcp takes command, args, env, url, headers and timeout, not base_url or allow_hosts")
				break
			}
		}
		c.BaseURL = ""
	}
	switch {
	case m.Command == "" && m.URL == "":
		// No upstream: a decide-only connector (a runtime runs its own MCP
		// servers and asks POST /v1/decide), as every mcp connector was
		// before warden could run them.
		if len(m.Args) > 0 || len(m.Env) > 0 || len(m.Headers) > 0 || m.Timeout != 0 {
			d.errorf(n, "mcp connector %q has args, env, headers or timeout but neither \"command\" (a stdio server) nor \"url\" (a Streamable HTTP server)", c.Name)
		}
		return
	case m.Command != "" && m.URL != "":
		d.errorf(n, "mcp connector %q has both \"command\" and \"url\"; give one", c.Name)
	case m.URL != "":
		// The url is not echoed: it might carry a password.
		u, err := url.Parse(m.URL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			d.errorf(n, "mcp connector %q: url must be an absolute http or https URL", c.Name)
		case u.User != nil:
			d.errorf(n, "mcp connector %q: url must not carry credentials; use headers with {credentials.NAME}", c.Name)
		}
		if len(m.Args) > 0 || len(m.Env) > 0 {
			d.errorf(n, "mcp connector %q: args and env belong to a command, not to a url", c.Name)
		}
	default:
		if len(m.Headers) > 0 {
			d.errorf(n, "mcp connector %q: headers belong to a url, not to a command (use env for a command's credentials)", c.Name)
		}
	}
	if m.Timeout < 0 || time.Duration(m.Timeout) > time.Hour {
		d.errorf(n, "mcp connector %q: timeout must be between 0 and 1h", c.Name)
	}
	c.MCP = &m
}

// checkMCPActions checks that an mcp connector's declared actions can name
// upstream tools.
func (d *decoder) checkMCPActions(c *Connector) {
	for name, a := range c.Actions {
		if !mcpToolName.MatchString(name) {
			*d.errs = append(*d.errs, &Error{Pos: a.Pos, Msg: fmt.Sprintf("mcp connector %q: action %q is not a valid MCP tool name ([A-Za-z0-9_.-], at most 128 characters)", c.Name, name)})
		}
	}
}

// rejectMCPKeys reports mcp keys on a connector of another type.
func (d *decoder) rejectMCPKeys(c *Connector, k *mcpKeys) {
	for _, v := range k.nodes {
		d.errorf(v, "connector type %s does not take mcp keys (command, args, env, url)", c.Type)
	}
}

// ValidToolName reports whether s may be an MCP tool name.
func ValidToolName(s string) bool { return mcpToolName.MatchString(s) }
