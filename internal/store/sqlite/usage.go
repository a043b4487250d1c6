package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/limit"
)

var _ dispatch.UsageStore = (*Store)(nil)

// Usage is what tenant/agent used on day (YYYY-MM-DD, UTC).
func (s *Store) Usage(ctx context.Context, tenant, agent, day string) (limit.Usage, error) {
	var u limit.Usage
	err := s.db.QueryRowContext(ctx, `SELECT tokens, cost_usd FROM usage WHERE tenant = ? AND agent = ? AND day = ?`,
		tenant, agent, day).Scan(&u.Tokens, &u.CostUSD)
	if errors.Is(err, sql.ErrNoRows) {
		return limit.Usage{}, nil
	}
	if err != nil {
		return u, fmt.Errorf("usage: %w", err)
	}
	return u, nil
}

// RecordUsage appends rec and adds its tokens and cost to its agent's usage
// on rec.Time's UTC day, in one group-committed transaction.
func (s *Store) RecordUsage(ctx context.Context, rec *audit.Record) error {
	return s.appendWith(ctx, rec, func(ctx context.Context, tx *sql.Tx) error { return addUsage(ctx, tx, rec) })
}

// addUsage adds rec's tokens and cost to the usage table; a record
// carrying neither changes nothing.
func addUsage(ctx context.Context, tx *sql.Tx, rec *audit.Record) error {
	if rec.Tokens == 0 && rec.CostUSD == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO usage (tenant, agent, day, tokens, cost_usd, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, agent, day) DO UPDATE SET tokens = tokens + excluded.tokens,
			cost_usd = cost_usd + excluded.cost_usd, updated_at = excluded.updated_at`,
		rec.Tenant, rec.Agent, limit.Day(rec.Time), rec.Tokens, rec.CostUSD, rec.Time.UTC().Format(timeColumn))
	return err
}
