package sqlshared

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/identity"
	"github.com/warden-dev/warden/internal/store"
)

// TokenRow is a new token as the tokens table stores it.
type TokenRow struct {
	Token string // the value, which is not stored
	Hash  string
	Info  store.TokenInfo
	// Created is Info.CreatedAt as stored.
	Created string
	// ScopeAgents and ScopeConnectors are an approver token's scope as
	// stored: JSON lists, empty for any.
	ScopeAgents, ScopeConnectors string
}

// NewToken makes a new token for p, or says why p cannot have one.
func NewToken(p call.Principal) (TokenRow, error) {
	if !p.Role.Valid() {
		return TokenRow{}, fmt.Errorf("unknown role %q", p.Role)
	}
	if p.Role == call.RoleAgent && (p.Agent == "" || p.Tenant == "") {
		return TokenRow{}, errors.New("an agent token needs an agent and a tenant")
	}
	token, hash := identity.NewToken()
	now := time.Now().UTC()
	return TokenRow{
		Token: token, Hash: hash, Created: now.Format(time.RFC3339Nano),
		Info: store.TokenInfo{ID: call.NewID("tok", now), Role: p.Role, Tenant: p.Tenant, Agent: p.Agent, Name: p.Name, CreatedAt: now},
	}, nil
}

// NewApproverToken makes a new approver token for p limited to scope (it
// has no agent), or says why p cannot have one.
func NewApproverToken(p call.Principal, scope approval.Scope) (TokenRow, error) {
	if p.Role != call.RoleApprover {
		return TokenRow{}, fmt.Errorf("an approver scope needs role approver, not %q", p.Role)
	}
	if err := scope.Validate(); err != nil {
		return TokenRow{}, err
	}
	p.Agent = ""
	t, err := NewToken(p)
	if err != nil {
		return TokenRow{}, err
	}
	agents, _ := json.Marshal(nonNil(scope.Agents))
	connectors, _ := json.Marshal(nonNil(scope.Connectors))
	t.ScopeAgents, t.ScopeConnectors = string(agents), string(connectors)
	return t, nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// DecodeScope returns the approver scope stored as the JSON lists agents
// and connectors.
func DecodeScope(agents, connectors string) (approval.Scope, error) {
	var sc approval.Scope
	if err := json.Unmarshal([]byte(agents), &sc.Agents); err != nil {
		return sc, fmt.Errorf("approver scope: %w", err)
	}
	if err := json.Unmarshal([]byte(connectors), &sc.Connectors); err != nil {
		return sc, fmt.Errorf("approver scope: %w", err)
	}
	return sc, nil
}

// TokenColumns are the tokens columns ScanTokens reads, in order.
const TokenColumns = "id, role, tenant, agent, name, created_at, revoked_at"

// ScanTokens reads every row of rows, a query of TokenColumns.
func ScanTokens(rows Rows) ([]store.TokenInfo, error) {
	var out []store.TokenInfo
	for rows.Next() {
		var t store.TokenInfo
		var role, created string
		var revoked *string
		if err := rows.Scan(&t.ID, &role, &t.Tenant, &t.Agent, &t.Name, &created, &revoked); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		t.Role = call.Role(role)
		t.CreatedAt, _ = time.Parse(time.RFC3339Nano, created)
		if revoked != nil {
			r, _ := time.Parse(time.RFC3339Nano, *revoked)
			t.RevokedAt = &r
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
