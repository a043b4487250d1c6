package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/identity"
)

var _ dispatch.ApprovalStore = (*Store)(nil)

// CallByApproval returns the call an approval request belongs to, or
// dispatch.ErrNotFound.
func (s *Store) CallByApproval(ctx context.Context, approvalID string) (*dispatch.State, error) {
	sts, err := s.queryCalls(ctx, `SELECT body, args, revision FROM calls WHERE approval_id = ?`, approvalID)
	if err != nil {
		return nil, fmt.Errorf("read approval %s: %w", approvalID, err)
	}
	if len(sts) == 0 {
		return nil, dispatch.ErrNotFound
	}
	return sts[0], nil
}

// ApprovalCalls returns calls with an approval request in tenant ("" for
// every tenant), in one call status or any (""), newest first.
func (s *Store) ApprovalCalls(ctx context.Context, tenant, status string, limit int) ([]*dispatch.State, error) {
	q := `SELECT body, args, revision FROM calls WHERE approval_id IS NOT NULL`
	var args []any
	if tenant != "" {
		q += ` AND tenant = ?`
		args = append(args, tenant)
	}
	if status != "" {
		q += ` AND status = ?`
		args = append(args, status)
	}
	q += ` ORDER BY created_at DESC LIMIT ?`
	args = append(args, limit)
	sts, err := s.queryCalls(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	return sts, nil
}

// ApprovedCalls returns up to limit approved calls not yet claimed for
// execution, oldest first.
func (s *Store) ApprovedCalls(ctx context.Context, limit int) ([]*dispatch.State, error) {
	sts, err := s.queryCalls(ctx, `SELECT body, args, revision FROM calls WHERE status = 'approved' ORDER BY updated_at LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("approved calls: %w", err)
	}
	return sts, nil
}

// ApproverScope returns the agent/connector scope of a token (empty: any).
func (s *Store) ApproverScope(ctx context.Context, tokenID string) (approval.Scope, error) {
	var sc approval.Scope
	var agents, connectors string
	err := s.db.QueryRowContext(ctx, `SELECT scope_agents, scope_connectors FROM tokens WHERE id = ?`, tokenID).Scan(&agents, &connectors)
	if errors.Is(err, sql.ErrNoRows) {
		return sc, fmt.Errorf("token %s: %w", tokenID, ErrNotFound)
	}
	if err != nil {
		return sc, fmt.Errorf("approver scope: %w", err)
	}
	if err := json.Unmarshal([]byte(agents), &sc.Agents); err != nil {
		return sc, fmt.Errorf("approver scope: %w", err)
	}
	if err := json.Unmarshal([]byte(connectors), &sc.Connectors); err != nil {
		return sc, fmt.Errorf("approver scope: %w", err)
	}
	return sc, nil
}

// CreateApproverToken stores a new approver token for p limited to scope,
// in one statement (a token is never briefly broader than asked), and
// returns its value, which is not stored.
func (s *Store) CreateApproverToken(ctx context.Context, p call.Principal, scope approval.Scope) (string, TokenInfo, error) {
	var info TokenInfo
	if p.Role != call.RoleApprover {
		return "", info, fmt.Errorf("an approver scope needs role approver, not %q", p.Role)
	}
	if err := scope.Validate(); err != nil {
		return "", info, err
	}
	agents, _ := json.Marshal(nonNil(scope.Agents))
	connectors, _ := json.Marshal(nonNil(scope.Connectors))
	token, hash := identity.NewToken()
	now := time.Now().UTC()
	info = TokenInfo{ID: call.NewID("tok", now), Role: p.Role, Tenant: p.Tenant, Name: p.Name, CreatedAt: now}
	_, err := s.db.ExecContext(ctx, `INSERT INTO tokens (id, hash, role, tenant, agent, name, created_at, scope_agents, scope_connectors)
		VALUES (?, ?, ?, ?, '', ?, ?, ?, ?)`,
		info.ID, hash, string(p.Role), p.Tenant, p.Name, now.Format(time.RFC3339Nano), string(agents), string(connectors))
	if err != nil {
		return "", info, fmt.Errorf("create token: %w", err)
	}
	return token, info, nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
