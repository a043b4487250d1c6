package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/store"
)

// Stats reads the records of the window q names and aggregates them, the
// same way and with the same bounds as the sqlite store.
func (s *Store) Stats(ctx context.Context, q store.StatsQuery, now time.Time) (*store.Stats, error) {
	if q.Bucket <= 0 {
		q.Bucket = now.Sub(q.Since)
	}
	if q.Bucket <= 0 {
		q.Bucket = time.Second
	}
	n := int(max(now.Sub(q.Since)/q.Bucket, 1))
	if now.Sub(q.Since)%q.Bucket != 0 {
		n++
	}
	st := &store.Stats{
		Volume: make([]int64, n), Decisions: map[string]int64{},
		Connectors: map[string]store.Outcomes{}, Usage: map[string]store.Usage{},
	}
	since := q.Since.UTC().Format(timeColumn)
	// where selects the window's records of table alias t; its arguments
	// are $1 (since) and $2 (tenant).
	where := func(t string) string {
		if q.Tenant != "" {
			return t + `time >= $1 AND ` + t + `tenant = $2`
		}
		return t + `time >= $1`
	}
	args := []any{since}
	if q.Tenant != "" {
		args = append(args, q.Tenant)
	}
	k := len(args)
	bucketSecs := max(int64(q.Bucket/time.Second), 1)
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`
		SELECT kind, decision, tenant, agent,
			coalesce(b->>'connector', ''), coalesce(b->>'outcome', ''),
			(extract(epoch FROM (substr(time, 1, 19)::timestamp))::bigint - $%d) / $%d AS bucket,
			count(*), coalesce(sum((b->>'cost_usd')::float8), 0), coalesce(sum((b->>'tokens')::float8), 0)
		FROM (SELECT kind, decision, tenant, agent, body::jsonb AS b, time FROM audit_records
			WHERE `+where("")+` ORDER BY time DESC LIMIT $%d) w
		GROUP BY 1, 2, 3, 4, 5, 6, 7`, k+1, k+2, k+3),
		append(args, q.Since.Unix(), bucketSecs, store.MaxStatsRecords+1)...)
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
	rows.Close()
	if seen > store.MaxStatsRecords {
		st.Truncated = true
	}

	lrows, err := s.pool.Query(ctx, fmt.Sprintf(`
		SELECT v.time, d.time FROM audit_records v
		JOIN audit_records d ON d.call_id = v.call_id AND d.kind = 'decision'
		WHERE `+where("v.")+` AND v.kind IN ('approval', 'denial')
		ORDER BY v.time DESC LIMIT $%d`, k+1), append(args, store.MaxLatencies)...)
	if err != nil {
		return nil, fmt.Errorf("stats: approval latency: %w", err)
	}
	defer lrows.Close()
	for lrows.Next() {
		var voted, asked string
		if err := lrows.Scan(&voted, &asked); err != nil {
			return nil, fmt.Errorf("stats: approval latency: %w", err)
		}
		v, err1 := time.Parse(timeColumn, voted)
		a, err2 := time.Parse(timeColumn, asked)
		if err1 == nil && err2 == nil {
			st.ApprovalLatency = append(st.ApprovalLatency, max(v.Sub(a), 0))
		}
	}
	if err := lrows.Err(); err != nil {
		return nil, fmt.Errorf("stats: approval latency: %w", err)
	}
	return st, nil
}
