package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/store/sqlshared"
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
	var agents, connectors string
	err := s.db.QueryRowContext(ctx, `SELECT scope_agents, scope_connectors FROM tokens WHERE id = ?`, tokenID).Scan(&agents, &connectors)
	if errors.Is(err, sql.ErrNoRows) {
		return approval.Scope{}, fmt.Errorf("token %s: %w", tokenID, ErrNotFound)
	}
	if err != nil {
		return approval.Scope{}, fmt.Errorf("approver scope: %w", err)
	}
	return sqlshared.DecodeScope(agents, connectors)
}

// CreateApproverToken stores a new approver token for p limited to scope,
// in one statement (a token is never briefly broader than asked), and
// returns its value, which is not stored.
func (s *Store) CreateApproverToken(ctx context.Context, p call.Principal, scope approval.Scope) (string, TokenInfo, error) {
	t, err := sqlshared.NewApproverToken(p, scope)
	if err != nil {
		return "", t.Info, err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO tokens (id, hash, role, tenant, agent, name, created_at, scope_agents, scope_connectors)
		VALUES (?, ?, ?, ?, '', ?, ?, ?, ?)`,
		t.Info.ID, t.Hash, string(p.Role), p.Tenant, p.Name, t.Created, t.ScopeAgents, t.ScopeConnectors)
	if err != nil {
		return "", t.Info, fmt.Errorf("create token: %w", err)
	}
	return t.Token, t.Info, nil
}
