package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/dispatch"
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
	var out []dispatch.KilledCall
	seen := map[string]bool{}
	for rows.Next() {
		var body, args, by, at, why string
		var rev int64
		if err := rows.Scan(&body, &args, &rev, &by, &at, &why); err != nil {
			return nil, fmt.Errorf("killed pending calls: %w", err)
		}
		st, err := scanCall(rowValues{body, args, rev})
		if err != nil {
			return nil, fmt.Errorf("killed pending calls: %w", err)
		}
		if seen[st.ID] {
			continue // also stopped by a later entry
		}
		seen[st.ID] = true
		k := dispatch.Kill{By: by, Why: why}
		k.At, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, dispatch.KilledCall{State: st, Kill: k})
		if len(out) == limit {
			break
		}
	}
	return out, rows.Err()
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

// rowValues lets scanCall read values already scanned.
type rowValues struct {
	body, args string
	rev        int64
}

func (r rowValues) Scan(dst ...any) error {
	if len(dst) != 3 {
		return fmt.Errorf("rowValues: %d destinations", len(dst))
	}
	*dst[0].(*string), *dst[1].(*string), *dst[2].(*int64) = r.body, r.args, r.rev
	return nil
}
