package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
)

// ApproverByName returns the principal of the newest unrevoked approver
// token named name, or ErrNotFound. A Slack user mapped to that name in
// the config decides as this principal: the token's tenant and scope
// apply, and revoking it stops the user's Slack clicks.
func (s *Store) ApproverByName(ctx context.Context, name string) (call.Principal, error) {
	var p call.Principal
	err := s.db.QueryRowContext(ctx, `SELECT id, tenant, name FROM tokens
		WHERE role = 'approver' AND name = ? AND revoked_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1`, name).
		Scan(&p.TokenID, &p.Tenant, &p.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("approver %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("approver %q: %w", name, err)
	}
	p.Role = call.RoleApprover
	return p, nil
}

// ApprovalCallsSince returns every call with an approval request created
// at or after since, oldest first (what `warden autonomy` summarizes).
func (s *Store) ApprovalCallsSince(ctx context.Context, since time.Time) ([]*dispatch.State, error) {
	sts, err := s.queryCalls(ctx, `SELECT body, args, revision FROM calls
		WHERE approval_id IS NOT NULL AND created_at >= ? ORDER BY created_at`, since.UTC().Format(timeColumn))
	if err != nil {
		return nil, fmt.Errorf("approval history: %w", err)
	}
	return sts, nil
}
