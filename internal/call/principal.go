package call

// Role is what a token may do.
type Role string

// Roles. An agent token acts for exactly one agent in one tenant; the human
// roles act within a tenant ("" for admins and auditors of every tenant).
const (
	RoleAgent    Role = "agent"
	RoleAdmin    Role = "admin"
	RoleApprover Role = "approver"
	RoleAuditor  Role = "auditor"
)

// Roles lists the valid roles.
var Roles = []Role{RoleAgent, RoleAdmin, RoleApprover, RoleAuditor}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, v := range Roles {
		if v == r {
			return true
		}
	}
	return false
}

// Principal is who is calling: the identity behind a bearer token.
type Principal struct {
	TokenID string
	Role    Role
	Tenant  string // empty: every tenant (admins and auditors only)
	Agent   string // agents only
	Name    string // a label for humans' tokens, e.g. "alice"
}

// Identity names the principal in audit records: "agent:acme/bot",
// "admin:alice".
func (p Principal) Identity() string {
	if p.Role == RoleAgent {
		return "agent:" + p.Tenant + "/" + p.Agent
	}
	if p.Name != "" {
		return string(p.Role) + ":" + p.Name
	}
	return string(p.Role) + ":" + p.TokenID
}

// InTenant reports whether the principal may act in tenant t.
func (p Principal) InTenant(t string) bool { return p.Tenant == "" || p.Tenant == t }
