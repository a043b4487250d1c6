package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

// Read-only views for the console's admin pages: activity statistics over
// a recent window of the audit trail (the dashboard), the kill switches
// that are set and when the live config version became live (the agents
// page). Every query is bounded: the dashboard never reads more than
// store.MaxStatsRecords records, however busy the window was.

// Stats reads the records of the window q names and aggregates them.
func (s *Store) Stats(ctx context.Context, q store.StatsQuery, now time.Time) (*store.Stats, error) {
	b := sqlshared.NewStats(q, now)
	where, args := sqlshared.StatsWhere(b.Query, "", sqlshared.Question)
	// The newest MaxStatsRecords records of the window (the time index
	// bounds the scan), grouped so that only a few rows come back.
	rows, err := s.db.QueryContext(ctx, `
		SELECT kind, decision, tenant, agent,
			coalesce(json_extract(body, '$.connector'), ''), coalesce(json_extract(body, '$.outcome'), ''),
			(CAST(strftime('%s', substr(time, 1, 19)) AS INTEGER) - ?) / ? AS bucket,
			count(*), total(json_extract(body, '$.cost_usd')), total(json_extract(body, '$.tokens'))
		FROM (SELECT kind, decision, tenant, agent, body, time FROM audit_records
			WHERE `+where+` ORDER BY time DESC LIMIT ?)
		GROUP BY 1, 2, 3, 4, 5, 6, 7`,
		append([]any{b.Query.Since.Unix(), b.BucketSecs}, append(args, store.MaxStatsRecords+1)...)...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r sqlshared.StatsRow
		if err := rows.Scan(&r.Kind, &r.Decision, &r.Tenant, &r.Agent, &r.Connector, &r.Outcome, &r.Bucket, &r.Count, &r.CostUSD, &r.Tokens); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		b.Add(r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	st := b.Done()

	lq, largs := sqlshared.LatencyQuery(b.Query, sqlshared.Question)
	lrows, err := s.db.QueryContext(ctx, lq, largs...)
	if err != nil {
		return nil, fmt.Errorf("stats: approval latency: %w", err)
	}
	defer lrows.Close()
	if st.ApprovalLatency, err = sqlshared.ScanLatencies(lrows); err != nil {
		return nil, err
	}
	return st, nil
}

// KillSwitches lists the kill switches that are set, oldest first.
func (s *Store) KillSwitches(ctx context.Context) ([]store.KillSwitch, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT tenant, agent, by, at, why FROM kills ORDER BY at, tenant, agent LIMIT ?`, store.MaxKillSwitches)
	if err != nil {
		return nil, fmt.Errorf("kill switches: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanKillSwitches(rows)
}

// LiveActivation returns how the live version became live, or nil when no
// version was ever applied.
func (s *Store) LiveActivation(ctx context.Context) (*store.Activation, error) {
	var a store.Activation
	var at string
	err := s.db.QueryRowContext(ctx, `SELECT version, kind, by, at FROM config_activations ORDER BY id DESC LIMIT 1`).
		Scan(&a.Version, &a.Kind, &a.By, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("live config: %w", err)
	}
	a.At, _ = time.Parse(timeColumn, at)
	return &a, nil
}
