package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

// Stats reads the records of the window q names and aggregates them, the
// same way and with the same bounds as the sqlite store.
func (s *Store) Stats(ctx context.Context, q store.StatsQuery, now time.Time) (*store.Stats, error) {
	b := sqlshared.NewStats(q, now)
	where, args := sqlshared.StatsWhere(b.Query, "", sqlshared.Dollar)
	// The newest MaxStatsRecords records of the window (the time index
	// bounds the scan). Their bodies are decoded here, not cast to jsonb
	// in SQL: jsonb refuses some valid JSON (a \u0000 escape, a lone
	// surrogate) that an agent's arguments or a connector's output may
	// hold, and one such record would fail the whole query.
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`
		SELECT kind, decision, tenant, agent, body, time FROM audit_records
		WHERE `+where+` ORDER BY time DESC LIMIT $%d`, len(args)+1),
		append(args, store.MaxStatsRecords+1)...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r := sqlshared.StatsRow{Count: 1}
		var body, tm string
		if err := rows.Scan(&r.Kind, &r.Decision, &r.Tenant, &r.Agent, &body, &tm); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		var fields struct {
			Connector string  `json:"connector"`
			Outcome   string  `json:"outcome"`
			CostUSD   float64 `json:"cost_usd"`
			Tokens    float64 `json:"tokens"`
		}
		// A body that does not decode still counts, without these fields.
		_ = json.Unmarshal([]byte(body), &fields)
		r.Connector, r.Outcome, r.CostUSD, r.Tokens = fields.Connector, fields.Outcome, fields.CostUSD, fields.Tokens
		r.Bucket = b.BucketOf(tm)
		b.Add(r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	rows.Close()
	st := b.Done()

	lq, largs := sqlshared.LatencyQuery(b.Query, sqlshared.Dollar)
	lrows, err := s.pool.Query(ctx, lq, largs...)
	if err != nil {
		return nil, fmt.Errorf("stats: approval latency: %w", err)
	}
	defer lrows.Close()
	if st.ApprovalLatency, err = sqlshared.ScanLatencies(lrows); err != nil {
		return nil, err
	}
	return st, nil
}
