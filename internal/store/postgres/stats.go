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
	// The newest MaxStatsRecords records of the window (the time index
	// bounds the scan). Their bodies are decoded here, not cast to jsonb
	// in SQL: jsonb refuses some valid JSON (a \u0000 escape, a lone
	// surrogate) that an agent's arguments or a connector's output may
	// hold, and one such record would fail the whole query.
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`
		SELECT kind, decision, tenant, agent, body, time FROM audit_records
		WHERE `+where("")+` ORDER BY time DESC LIMIT $%d`, k+1),
		append(args, store.MaxStatsRecords+1)...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	var seen int64
	tokens := map[string]float64{}
	for rows.Next() {
		var kind, decision, tenant, agent, body, tm string
		if err := rows.Scan(&kind, &decision, &tenant, &agent, &body, &tm); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		seen++
		var b struct {
			Connector string  `json:"connector"`
			Outcome   string  `json:"outcome"`
			CostUSD   float64 `json:"cost_usd"`
			Tokens    float64 `json:"tokens"`
		}
		// A body that does not decode still counts, without these fields.
		_ = json.Unmarshal([]byte(body), &b)
		switch kind {
		case "decision", "decision_only":
			st.Calls++
			st.Decisions[decision]++
			var bucket int64
			if len(tm) >= 19 {
				if t, err := time.Parse("2006-01-02T15:04:05", tm[:19]); err == nil {
					bucket = (t.Unix() - q.Since.Unix()) / bucketSecs
				}
			}
			st.Volume[min(max(bucket, 0), int64(len(st.Volume)-1))]++
		case "outcome", "reported_outcome":
			o := st.Connectors[b.Connector]
			switch b.Outcome {
			case "succeeded":
				o.Succeeded++
			case "failed":
				o.Failed++
			}
			if b.Outcome == "succeeded" || b.Outcome == "failed" {
				st.Connectors[b.Connector] = o
			}
		case "expired":
			st.Expired++
		}
		if b.CostUSD > 0 || b.Tokens > 0 {
			key := tenant + "/" + agent
			u := st.Usage[key]
			u.CostUSD += b.CostUSD
			st.Usage[key] = u
			tokens[key] += b.Tokens
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	rows.Close()
	for key, n := range tokens {
		u := st.Usage[key]
		u.Tokens = int64(n)
		st.Usage[key] = u
	}
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
	if st.ApprovalLatency, err = sqlshared.ScanLatencies(lrows); err != nil {
		return nil, err
	}
	return st, nil
}
