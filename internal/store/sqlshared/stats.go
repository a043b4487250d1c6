package sqlshared

import (
	"time"

	"github.com/warden-dev/warden/internal/store"
)

// StatsRow is one group of audit records as a store's Stats query reads
// it: Count records of one kind, decision, tenant, agent, connector,
// outcome and Bucket, with their summed cost and tokens.
type StatsRow struct {
	Kind, Decision, Tenant, Agent, Connector, Outcome string
	Bucket, Count                                     int64
	CostUSD, Tokens                                   float64
}

// StatsBuilder aggregates the records of one Stats window, the same way
// for every store.
type StatsBuilder struct {
	// Query is the window asked for, its Bucket made whole seconds, at
	// least one (records are bucketed by the second).
	Query store.StatsQuery
	// BucketSecs is Query.Bucket in seconds, never 0.
	BucketSecs int64
	st         *store.Stats
	seen       int64
	tokens     map[string]float64
}

// NewStats starts the statistics of the window q names, ending at now. A
// Bucket of 0 is the whole window; it is then rounded up to whole
// seconds, at least one.
func NewStats(q store.StatsQuery, now time.Time) *StatsBuilder {
	span := now.Sub(q.Since)
	if q.Bucket <= 0 {
		q.Bucket = span
	}
	if r := q.Bucket % time.Second; r != 0 {
		q.Bucket += time.Second - r
	}
	if q.Bucket <= 0 {
		q.Bucket = time.Second
	}
	n := int(max(span/q.Bucket, 1))
	if span%q.Bucket != 0 {
		n++
	}
	return &StatsBuilder{
		Query: q, BucketSecs: int64(q.Bucket / time.Second),
		st: &store.Stats{
			Volume: make([]int64, n), Decisions: map[string]int64{},
			Connectors: map[string]store.Outcomes{}, Usage: map[string]store.Usage{},
		},
		tokens: map[string]float64{},
	}
}

// BucketOf returns the bucket of a record at tm (a time column), or 0
// when tm does not parse.
func (b *StatsBuilder) BucketOf(tm string) int64 {
	if len(tm) >= 19 {
		if t, err := time.Parse("2006-01-02T15:04:05", tm[:19]); err == nil {
			return (t.Unix() - b.Query.Since.Unix()) / b.BucketSecs
		}
	}
	return 0
}

// Add counts one group of records.
func (b *StatsBuilder) Add(r StatsRow) {
	st := b.st
	b.seen += r.Count
	switch r.Kind {
	case "decision", "decision_only":
		st.Calls += r.Count
		st.Decisions[r.Decision] += r.Count
		// Since counts in whole seconds here: a record in the window's
		// last fraction of a second lands one past the end.
		st.Volume[min(max(r.Bucket, 0), int64(len(st.Volume)-1))] += r.Count
	case "outcome", "reported_outcome":
		o := st.Connectors[r.Connector]
		switch r.Outcome {
		case "succeeded":
			o.Succeeded += r.Count
		case "failed":
			o.Failed += r.Count
		}
		if r.Outcome == "succeeded" || r.Outcome == "failed" {
			st.Connectors[r.Connector] = o
		}
	case "expired":
		st.Expired += r.Count
	}
	if r.CostUSD > 0 || r.Tokens > 0 {
		key := r.Tenant + "/" + r.Agent
		u := st.Usage[key]
		u.CostUSD += r.CostUSD
		st.Usage[key] = u
		b.tokens[key] += r.Tokens
	}
}

// Done returns the statistics of every record added, Truncated when they
// were more than MaxStatsRecords.
func (b *StatsBuilder) Done() *store.Stats {
	for key, n := range b.tokens {
		u := b.st.Usage[key]
		u.Tokens = int64(n)
		b.st.Usage[key] = u
	}
	b.st.Truncated = b.seen > store.MaxStatsRecords
	return b.st
}

// StatsWhere returns the condition selecting the records of q's window in
// table alias t ("" or "v."), and its arguments, numbered from 1.
func StatsWhere(q store.StatsQuery, t string, param Param) (string, []any) {
	args := []any{q.Since.UTC().Format(TimeColumn)}
	where := t + `time >= ` + param(1)
	if q.Tenant != "" {
		args = append(args, q.Tenant)
		where += ` AND ` + t + `tenant = ` + param(2)
	}
	return where, args
}

// LatencyQuery returns the query reading, for the newest MaxLatencies
// approval votes of q's window, each vote's time and its call's decision
// time (the call_id index makes the join one lookup per vote), for
// ScanLatencies, and its arguments.
func LatencyQuery(q store.StatsQuery, param Param) (string, []any) {
	where, args := StatsWhere(q, "v.", param)
	args = append(args, store.MaxLatencies)
	return `SELECT v.time, d.time FROM audit_records v
		JOIN audit_records d ON d.call_id = v.call_id AND d.kind = 'decision'
		WHERE ` + where + ` AND v.kind IN ('approval', 'denial')
		ORDER BY v.time DESC LIMIT ` + param(len(args)), args
}
