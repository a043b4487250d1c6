// Package config turns a directory of YAML documents (kind: agent, connector,
// policy) into a validated, typed Config with a content-hash version. It is
// strict: unknown keys, wrong types, duplicate names and dangling references
// are errors, each naming file:line:col, and all are reported at once.
//
// It knows nothing of HTTP, SQL or how the config is used; the policy engine
// and the connectors consume what it produces.
package config

import (
	"regexp"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/condition"
)

// Config is one validated configuration.
type Config struct {
	// Version is the SHA-256 (hex) of the canonical form: the same for the
	// same meaning, whatever the key order, comments, whitespace or file split.
	Version    string       `json:"-"`
	Agents     []*Agent     `json:"agents"`     // sorted by tenant, name
	Connectors []*Connector `json:"connectors"` // sorted by name; built-ins excluded
	Policies   []*Policy    `json:"policies"`   // sorted by tenant, name
	// Approvals is the `kind: approvals` document (approvals.go); nil: none.
	Approvals *Approvals `json:"approvals,omitempty"`
	// Alerts is the `kind: alerts` document (alerts.go); nil: none.
	Alerts *Alerts `json:"alerts,omitempty"`
}

// Mode is an agent's permission for one action.
type Mode string

// Permission modes. An action an agent does not list is Off.
const (
	On  Mode = "on"
	Ask Mode = "ask"
	Off Mode = "off"
)

// Agent is one agent identity and what it may do.
type Agent struct {
	Pos         `json:"-"`
	Name        string                     `json:"name"`
	Tenant      string                     `json:"tenant"`
	Owner       string                     `json:"owner,omitempty"`
	Description string                     `json:"description,omitempty"`
	Runtime     string                     `json:"runtime,omitempty"`
	Model       string                     `json:"model,omitempty"`
	Permissions map[string]map[string]Mode `json:"permissions,omitempty"` // connector → action → mode
	Budgets     Budgets                    `json:"budgets"`
	// RateLimits are calls per minute per connector → action, "*" for all
	// of a connector's actions together (ratelimit.go); on top of
	// Budgets.CallsPerMinute.
	RateLimits map[string]map[string]int64 `json:"rate_limits,omitempty"`

	permPos map[string]Pos // where each permission key was written
	ratePos map[string]Pos // where each rate_limits key was written
}

// Permission returns the agent's mode for an action: Off when unlisted.
func (a *Agent) Permission(connector, action string) Mode {
	if m, ok := a.Permissions[connector][action]; ok {
		return m
	}
	return Off
}

// Budgets cap an agent's use; zero means no cap.
type Budgets struct {
	CallsPerMinute int64   `json:"calls_per_minute,omitempty"`
	TokensPerDay   int64   `json:"tokens_per_day,omitempty"`
	USDPerDay      float64 `json:"usd_per_day,omitempty"`
}

// Connector types.
const (
	TypeHTTP       = "http"
	TypeGitHub     = "github"
	TypeSlack      = "slack"
	TypeSQL        = "sql"
	TypeExec       = "exec"
	TypeMCP        = "mcp"
	TypeClaudeCode = "claude-code" // built in; cannot be declared
)

// ConnectorTypes are the types a connector document may declare.
var ConnectorTypes = []string{TypeHTTP, TypeGitHub, TypeSlack, TypeSQL, TypeExec, TypeMCP}

// Connector is a system agents act on, with its typed actions.
type Connector struct {
	Pos         `json:"-"`
	Name        string             `json:"name"`
	Type        string             `json:"type"`
	Description string             `json:"description,omitempty"`
	Credentials map[string]string  `json:"credentials,omitempty"` // name → secret reference
	Actions     map[string]*Action `json:"actions"`
	HTTP        *HTTPConnector     `json:"http,omitempty"`
	MCP         *MCPConnector      `json:"mcp,omitempty"` // mcp.go
	// Sandbox is the boundary of an exec connector (always set) or of a
	// sandboxed stdio mcp connector (set when written); sandbox.go.
	Sandbox *Sandbox `json:"sandbox,omitempty"`
	// BaseURL is the API root for github and slack connectors.
	BaseURL string `json:"base_url,omitempty"`
	// Builtin connectors (claude-code) accept any action name; unlisted ones
	// are of type unknown. So do mcp connectors: their upstream's tools.
	Builtin bool `json:"-"`
	// CredentialsTTL is how long a resolved credential value is reused;
	// nil: the default (1m); 0: resolved on every call.
	CredentialsTTL *Duration `json:"credentials_ttl,omitempty"`
}

// ActionType returns the type of the named action and whether it exists.
func (c *Connector) ActionType(action string) (call.ActionType, bool) {
	if a, ok := c.Actions[action]; ok {
		return a.Type, true
	}
	if c.Builtin || c.Type == TypeMCP {
		return call.Unknown, true
	}
	return "", false
}

// Action is one typed action of a connector.
type Action struct {
	Pos         `json:"-"`
	Name        string          `json:"-"`
	Type        call.ActionType `json:"type"`
	Description string          `json:"description,omitempty"`
	InputSchema map[string]any  `json:"input_schema,omitempty"`
	HTTP        *HTTPAction     `json:"http,omitempty"`
	Exec        *ExecAction     `json:"exec,omitempty"` // exec.go
}

// HTTPConnector holds the http type's own keys.
type HTTPConnector struct {
	BaseURL    string            `json:"base_url"`
	AllowHosts []string          `json:"allow_hosts,omitempty"`
	Timeout    Duration          `json:"timeout,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// HTTPAction holds an http action's own keys. Strings are templates.
type HTTPAction struct {
	Method  string            `json:"method"`
	Path    string            `json:"path,omitempty"`
	Query   map[string]string `json:"query,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Body is nil, the string "{args}", or a map whose string leaves are
	// templates.
	Body any `json:"body,omitempty"`
}

// Policy is a named, ordered list of rules.
type Policy struct {
	Pos         `json:"-"`
	Name        string  `json:"name"`
	Tenant      string  `json:"tenant,omitempty"` // empty: applies to every tenant
	Description string  `json:"description,omitempty"`
	Rules       []*Rule `json:"rules"`
}

// Rule tightens decisions for the calls it matches.
type Rule struct {
	Pos         `json:"-"`
	Name        string               `json:"name"`
	Policy      string               `json:"-"`
	Tenant      string               `json:"-"` // the policy's tenant
	Description string               `json:"description,omitempty"`
	Reason      string               `json:"reason,omitempty"`
	Match       Match                `json:"match"`
	When        string               `json:"when,omitempty"`
	Condition   *condition.Condition `json:"-"`
	Decision    call.Decision        `json:"decision"`
	Constraints []*Constraint        `json:"constraints,omitempty"` // sorted by path
	Approval    *Approval            `json:"approval,omitempty"`    // REQUIRE_APPROVAL only
}

// Approval is a REQUIRE_APPROVAL rule's `approval` section.
type Approval struct {
	Timeout      Duration `json:"timeout,omitempty"`       // default: the server's --approval-timeout
	Approvers    []string `json:"approvers,omitempty"`     // globs over approver names; default anyone in scope
	MinApprovals int      `json:"min_approvals,omitempty"` // distinct approvers needed; default 1
}

// Match selects calls. Each field is a list of exact names or globs (*, ?,
// [...]); an empty field matches anything; a call matches when every field
// does.
type Match struct {
	Tenant      []string `json:"tenant,omitempty"`
	Agent       []string `json:"agent,omitempty"`
	Connector   []string `json:"connector,omitempty"`
	Action      []string `json:"action,omitempty"`
	ActionType  []string `json:"action_type,omitempty"`
	Environment []string `json:"environment,omitempty"`
}

// Constraint bounds one argument of an ALLOW_WITH_CONSTRAINTS rule.
type Constraint struct {
	Pos       `json:"-"`
	Path      string         `json:"path"` // "args.replicas"
	Segments  []string       `json:"-"`    // ["replicas"]
	Max       *float64       `json:"max,omitempty"`
	Min       *float64       `json:"min,omitempty"`
	In        []any          `json:"in,omitempty"`
	NotIn     []any          `json:"not_in,omitempty"`
	Pattern   string         `json:"pattern,omitempty"`
	Regexp    *regexp.Regexp `json:"-"`
	MaxLength *int64         `json:"max_length,omitempty"`
}
