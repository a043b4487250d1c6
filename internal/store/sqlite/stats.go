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
// MaxStatsRecords records, however busy the window was.

// MaxStatsRecords bounds how many audit records one Stats call reads.
const MaxStatsRecords = store.MaxStatsRecords

// maxLatencies bounds the approval votes Stats reads for the latency.
const maxLatencies = store.MaxLatencies

// The values Stats takes and returns.
type (
	StatsQuery = store.StatsQuery
	Outcomes   = store.Outcomes
	Usage      = store.Usage
	Stats      = store.Stats
)

// Stats reads the records of the window q names and aggregates them.
func (s *Store) Stats(ctx context.Context, q StatsQuery, now time.Time) (*Stats, error) {
	if q.Bucket <= 0 {
		q.Bucket = now.Sub(q.Since)
	}
	n := int(max(now.Sub(q.Since)/q.Bucket, 1))
	if now.Sub(q.Since)%q.Bucket != 0 {
		n++
	}
	st := &Stats{
		Volume: make([]int64, n), Decisions: map[string]int64{},
		Connectors: map[string]Outcomes{}, Usage: map[string]Usage{},
	}
	since := q.Since.UTC().Format(timeColumn)
	// where selects the window's records of table alias t.
	where := func(t string) string {
		if q.Tenant != "" {
			return t + `time >= ? AND ` + t + `tenant = ?`
		}
		return t + `time >= ?`
	}
	args := []any{since}
	if q.Tenant != "" {
		args = append(args, q.Tenant)
	}
	// The newest MaxStatsRecords records of the window (the time index
	// bounds the scan), grouped so that only a few rows come back.
	rows, err := s.db.QueryContext(ctx, `
		SELECT kind, decision, tenant, agent,
			coalesce(json_extract(body, '$.connector'), ''), coalesce(json_extract(body, '$.outcome'), ''),
			(CAST(strftime('%s', substr(time, 1, 19)) AS INTEGER) - ?) / ? AS bucket,
			count(*), total(json_extract(body, '$.cost_usd')), total(json_extract(body, '$.tokens'))
		FROM (SELECT kind, decision, tenant, agent, body, time FROM audit_records
			WHERE `+where("")+` ORDER BY time DESC LIMIT ?)
		GROUP BY 1, 2, 3, 4, 5, 6, 7`,
		append([]any{q.Since.Unix(), int64(q.Bucket / time.Second)}, append(args, MaxStatsRecords+1)...)...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	var seen int64
	for rows.Next() {
		var kind, decision, tenant, agent, connector, outcome string
		var bucket, count int64
		var cost, tokens float64
		if err := rows.Scan(&kind, &decision, &tenant, &agent, &connector, &outcome, &bucket, &count, &cost, &tokens); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		seen += count
		switch kind {
		case "decision", "decision_only":
			st.Calls += count
			st.Decisions[decision] += count
			// Since counts in whole seconds here: a record in the window's
			// last fraction of a second lands one past the end.
			st.Volume[min(max(bucket, 0), int64(len(st.Volume)-1))] += count
		case "outcome", "reported_outcome":
			o := st.Connectors[connector]
			switch outcome {
			case "succeeded":
				o.Succeeded += count
			case "failed":
				o.Failed += count
			}
			if outcome == "succeeded" || outcome == "failed" {
				st.Connectors[connector] = o
			}
		case "expired":
			st.Expired += count
		}
		if cost > 0 || tokens > 0 {
			u := st.Usage[tenant+"/"+agent]
			u.CostUSD += cost
			u.Tokens += int64(tokens)
			st.Usage[tenant+"/"+agent] = u
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	if seen > MaxStatsRecords {
		st.Truncated = true
	}

	// Approval latency: each vote against its call's decision record
	// (the call_id index makes the join one lookup per vote).
	lrows, err := s.db.QueryContext(ctx, `
		SELECT v.time, d.time FROM audit_records v
		JOIN audit_records d ON d.call_id = v.call_id AND d.kind = 'decision'
		WHERE `+where("v.")+` AND v.kind IN ('approval', 'denial')
		ORDER BY v.time DESC LIMIT ?`, append(args, maxLatencies)...)
	if err != nil {
		return nil, fmt.Errorf("stats: approval latency: %w", err)
	}
	defer lrows.Close()
	if st.ApprovalLatency, err = sqlshared.ScanLatencies(lrows); err != nil {
		return nil, err
	}
	return st, nil
}

// KillSwitch is one set kill switch.
type KillSwitch = store.KillSwitch

// maxKillSwitches bounds KillSwitches.
const maxKillSwitches = store.MaxKillSwitches

// KillSwitches lists the kill switches that are set, oldest first.
func (s *Store) KillSwitches(ctx context.Context) ([]KillSwitch, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT tenant, agent, by, at, why FROM kills ORDER BY at, tenant, agent LIMIT ?`, maxKillSwitches)
	if err != nil {
		return nil, fmt.Errorf("kill switches: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanKillSwitches(rows)
}

// Activation is one change of the live config version.
type Activation = store.Activation

// LiveActivation returns how the live version became live, or nil when no
// version was ever applied.
func (s *Store) LiveActivation(ctx context.Context) (*Activation, error) {
	var a Activation
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
