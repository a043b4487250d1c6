package sqlite

import (
	"context"
	"fmt"

	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

var _ dispatch.KilledPendingStore = (*Store)(nil)

// KilledPending returns up to limit pending calls whose agent a kill
// switch now stops, oldest first, each with the entry that stops it (the
// oldest when several do, as Killed reports). With no kill set this is one
// cheap query that finds nothing.
func (s *Store) KilledPending(ctx context.Context, limit int) ([]dispatch.KilledCall, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.body, c.args, c.revision, k.by, k.at, k.why
		FROM calls c JOIN kills k
		  ON (k.tenant = c.tenant AND k.agent IN (c.agent, '*')) OR (k.tenant = '*' AND k.agent = '*')
		WHERE c.status = 'pending'
		ORDER BY c.created_at, k.at
		LIMIT ?`, limit*4)
	if err != nil {
		return nil, fmt.Errorf("killed pending calls: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanKilledCalls(rows, limit)
}

// PendingCount returns how many calls wait for a human (the approval
// backlog alerts watch).
func (s *Store) PendingCount(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM calls WHERE status = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("pending calls: %w", err)
	}
	return n, nil
}
