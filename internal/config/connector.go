package config

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/secret"
	"go.yaml.in/yaml/v3"
)

// credUse is a {credentials.NAME} reference found in a template, checked
// against the connector's credentials once the whole document is read.
type credUse struct {
	pos  Pos
	name string
}

func (d *decoder) connector(n *yaml.Node) *Connector {
	c := &Connector{Pos: d.pos(n), Actions: map[string]*Action{}}
	var typeNode, actionsNode *yaml.Node
	var http HTTPConnector
	var httpKeys []*yaml.Node // type-specific keys, checked once the type is known
	var uses []credUse
	var mk mcpKeys // the mcp type's keys (mcp.go)
	var sk sandboxKeys
	typeKey := func(key string, set func(v *yaml.Node)) field {
		return field{key: key, set: func(v *yaml.Node) {
			httpKeys = append(httpKeys, v)
			set(v)
		}}
	}
	ok := d.object(n, "connector", append([]field{
		kindField(),
		field{key: "name", required: true, set: d.name(&c.Name, "connector name")},
		field{key: "type", required: true, set: func(v *yaml.Node) { typeNode = v; c.Type, _ = d.str(v, "connector type") }},
		field{key: "description", set: d.strInto(&c.Description, "description")},
		field{key: "credentials", set: func(v *yaml.Node) {
			c.Credentials = d.stringMap(v, "credentials", func(k, vn *yaml.Node, ref string) {
				if !nameRE.MatchString(k.Value) {
					d.errorf(k, "credential name %q is not a valid name", k.Value)
				}
				if _, err := secret.ParseRef(ref); err != nil {
					d.errorf(vn, "credentials.%s: %v", k.Value, err)
				}
			})
		}},
		field{key: "credentials_ttl", set: func(v *yaml.Node) {
			s, ok := d.str(v, "credentials_ttl")
			if !ok {
				return
			}
			ttl, err := time.ParseDuration(s)
			if err != nil || ttl < 0 {
				d.errorf(d.resolve(v), "credentials_ttl must be a duration such as 30s or 5m (0 = resolve on every call), got %q", s)
				return
			}
			t := Duration(ttl)
			c.CredentialsTTL = &t
		}},
		field{key: "actions", set: func(v *yaml.Node) { actionsNode = v }}, // required but for mcp: checked below
		typeKey("base_url", func(v *yaml.Node) { c.BaseURL, _ = d.str(v, "base_url") }),
		typeKey("allow_hosts", func(v *yaml.Node) { http.AllowHosts = d.strList(v, "allow_hosts") }),
		typeKey("timeout", func(v *yaml.Node) { http.Timeout, _ = d.duration(v, "timeout") }),
		typeKey("headers", func(v *yaml.Node) {
			http.Headers = d.stringMap(v, "headers", func(k, vn *yaml.Node, s string) {
				uses = append(uses, d.headerTemplate(&mk, vn, s, "headers."+k.Value)...) // mcp.go
			})
		}),
	}, append(d.mcpFields(&mk), d.sandboxFields(&sk)...)...)...)
	if !ok || c.Name == "" {
		return nil
	}
	switch c.Type {
	case "":
		// Reported as missing or mistyped already.
	case TypeHTTP:
		http.BaseURL = c.BaseURL
		c.BaseURL = ""
		c.HTTP = &http
		d.checkHTTP(n, c)
	case TypeGitHub, TypeSlack:
		for _, k := range httpKeys {
			if k != nil && c.BaseURL == "" {
				d.errorf(k, "connector type %s takes base_url but not allow_hosts, timeout or headers", c.Type)
			}
		}
		if c.BaseURL != "" {
			d.checkBaseURL(n, c.BaseURL)
		}
	case TypeMCP:
		d.checkMCP(n, c, &mk, &http, httpKeys) // mcp.go
		uses = append(uses, mk.uses...)
	case TypeSQL, TypeExec:
		for _, k := range httpKeys {
			d.errorf(k, "connector type %s does not take http keys (base_url, allow_hosts, timeout, headers)", c.Type)
		}
	case TypeClaudeCode:
		d.errorf(typeNode, "connector type claude-code is built in; agents name it in permissions without declaring it")
	default:
		d.errorf(d.resolve(typeNode), "unknown connector type %q; expected one of: %s", c.Type, strings.Join(ConnectorTypes, ", "))
	}
	d.finishSandbox(c, &sk) // sandbox.go
	if c.Name == TypeClaudeCode {
		d.errorf(n, "connector name %q is reserved for the built-in connector", c.Name)
	}
	if c.Type != TypeMCP && c.Type != "" {
		d.rejectMCPKeys(c, &mk)
	}
	if actionsNode == nil && c.Type != TypeMCP {
		d.errorf(n, "connector is missing required key %q", "actions")
	}
	if actionsNode != nil {
		uses = append(uses, d.actions(actionsNode, c)...)
	}
	if c.MCP != nil {
		d.checkMCPActions(c) // mcp.go
	}
	for _, u := range uses {
		if _, ok := c.Credentials[u.name]; !ok {
			*d.errs = append(*d.errs, &Error{Pos: u.pos, Msg: fmt.Sprintf("template names {credentials.%s} but the connector's credentials have no %q", u.name, u.name)})
		}
	}
	return c
}

func (d *decoder) checkBaseURL(n *yaml.Node, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.errorf(n, "base_url %q must be an absolute http or https URL", s)
	}
}

func (d *decoder) checkHTTP(n *yaml.Node, c *Connector) {
	h := c.HTTP
	if h.BaseURL == "" {
		d.errorf(n, "http connector %q is missing required key \"base_url\"", c.Name)
	} else {
		d.checkBaseURL(n, h.BaseURL)
	}
	for _, g := range h.AllowHosts {
		if err := checkGlob(g); err != nil {
			d.errorf(n, "allow_hosts entry %q: %v", g, err)
		}
	}
}

// checkGlob validates a glob pattern (*, ?, [...]).
func checkGlob(g string) error {
	if g == "" {
		return fmt.Errorf("empty pattern")
	}
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("bad glob %q: %v", g, err)
	}
	return nil
}

func (d *decoder) actions(n *yaml.Node, c *Connector) []credUse {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "actions must be a mapping of action name → definition, got %s", kindName(n))
		return nil
	}
	if len(n.Content) == 0 && c.Type != TypeMCP { // an mcp connector's actions come from its upstream
		d.errorf(n, "connector %q has no actions", c.Name)
	}
	var uses []credUse
	for k, v := range d.pairs(n, "actions") {
		var name string
		d.name(&name, "action name")(k)
		if name == "" {
			continue
		}
		a := &Action{Pos: d.pos(k), Name: name}
		what := "action " + name
		var typeNode *yaml.Node
		var h HTTPAction
		var httpKeys []*yaml.Node
		hk := func(key string, set func(*yaml.Node)) field {
			return field{key: key, set: func(v *yaml.Node) { httpKeys = append(httpKeys, v); set(v) }}
		}
		var ek execActionKeys // exec.go
		d.object(v, what, append([]field{
			field{key: "type", required: true, set: func(v *yaml.Node) {
				typeNode = v
				s, _ := d.str(v, what+" type")
				a.Type = call.ActionType(s)
			}},
			field{key: "description", set: d.strInto(&a.Description, what+" description")},
			field{key: "input_schema", set: func(v *yaml.Node) {
				x, ok := d.value(v, what+" input_schema")
				m, isMap := x.(map[string]any)
				if ok && !isMap {
					d.errorf(d.resolve(v), "%s input_schema must be a JSON Schema object", what)
					return
				}
				if ok {
					if err := checkSchema(m); err != nil {
						d.errorf(d.resolve(v), "%s input_schema: %v", what, err)
					}
					a.InputSchema = m
				}
			}},
			hk("method", func(v *yaml.Node) { h.Method, _ = d.str(v, what+" method") }),
			hk("path", func(v *yaml.Node) {
				if s, ok := d.str(v, what+" path"); ok {
					h.Path = s
					uses = append(uses, d.template(d.resolve(v), s, what+" path")...)
				}
			}),
			hk("query", func(v *yaml.Node) {
				h.Query = d.stringMap(v, what+" query", func(k, vn *yaml.Node, s string) {
					uses = append(uses, d.template(vn, s, what+" query."+k.Value)...)
				})
			}),
			hk("headers", func(v *yaml.Node) {
				h.Headers = d.stringMap(v, what+" headers", func(k, vn *yaml.Node, s string) {
					uses = append(uses, d.template(vn, s, what+" headers."+k.Value)...)
				})
			}),
			hk("body", func(v *yaml.Node) {
				var u []credUse
				h.Body, u = d.body(v, what+" body")
				uses = append(uses, u...)
			}),
		}, d.execActionFields(&ek, what)...)...)
		if typeNode != nil && a.Type != "" && !a.Type.Valid() {
			d.errorf(d.resolve(typeNode), "%s: unknown action type %q; expected one of: %s", what, a.Type, actionTypeList())
		}
		if c.Type == TypeHTTP {
			if h.Method == "" {
				h.Method = "GET"
			}
			h.Method = strings.ToUpper(h.Method)
			if !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, h.Method) {
				d.errorf(k, "%s: unknown HTTP method %q", what, h.Method)
			}
			if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
				d.errorf(k, "%s: path %q must start with /", what, h.Path)
			}
			a.HTTP = &h
		} else {
			for _, hn := range httpKeys {
				d.errorf(d.resolve(hn), "%s: method, path, query, headers and body belong to http connectors, not %s", what, c.Type)
			}
		}
		uses = append(uses, d.finishExecAction(c, a, &ek, k)...) // exec.go
		c.Actions[name] = a
	}
	return uses
}

func actionTypeList() string {
	s := make([]string, len(call.ActionTypes))
	for i, t := range call.ActionTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// body decodes an http body: the template "{args}" or a map whose string
// leaves are templates.
func (d *decoder) body(n *yaml.Node, what string) (any, []credUse) {
	n = d.resolve(n)
	if n == nil {
		return nil, nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		if n.Value != "{args}" {
			d.errorf(n, "%s must be \"{args}\" or a mapping of templates, got %q", what, n.Value)
			return nil, nil
		}
		return n.Value, nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be \"{args}\" or a mapping of templates, got %s", what, kindName(n))
		return nil, nil
	}
	v, _ := d.value(n, what)
	var uses []credUse
	var walk func(x any, p string)
	walk = func(x any, p string) {
		switch t := x.(type) {
		case map[string]any:
			for k, v := range t {
				walk(v, p+"."+k)
			}
		case []any:
			for i, v := range t {
				walk(v, fmt.Sprintf("%s[%d]", p, i))
			}
		case string:
			uses = append(uses, d.template(n, t, p)...)
		}
	}
	walk(v, what)
	return v, uses
}
