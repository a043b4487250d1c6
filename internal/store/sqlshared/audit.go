package sqlshared

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/store"
)

// RecordColumns are the audit_records columns ScanRecord reads, in order.
const RecordColumns = "seq, id, time, tenant, agent, decision, kind, call_id, body, hash"

// Param returns the SQL placeholder of the nth argument (from 1) of a
// backend's dialect: "?" or "$n".
type Param func(n int) string

// Dollar is postgres's Param: $n.
func Dollar(n int) string { return "$" + strconv.Itoa(n) }

// Question is sqlite's Param: ?.
func Question(int) string { return "?" }

// AuditQuery builds the query selecting the records f selects, in seq
// order (descending with f.Desc), and its arguments, with the placeholders
// param makes.
func AuditQuery(f store.AuditFilter, param Param) (string, []any, error) {
	if f.Limit < 0 {
		return "", nil, fmt.Errorf("audit query: negative limit %d", f.Limit)
	}
	var where []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, cond+" "+param(len(args)))
	}
	if f.Tenant != "" {
		add("tenant =", f.Tenant)
	}
	if f.Agent != "" {
		add("agent =", f.Agent)
	}
	if f.Decision != "" {
		add("decision =", f.Decision)
	}
	if f.CallID != "" {
		add("call_id =", f.CallID)
	}
	if !f.Since.IsZero() {
		add("time >=", f.Since.UTC().Format(TimeColumn))
	}
	if !f.Until.IsZero() {
		add("time <", f.Until.UTC().Format(TimeColumn))
	}
	if f.AfterSeq > 0 {
		add("seq >", f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		add("seq <", f.BeforeSeq)
	}
	q := "SELECT " + RecordColumns + " FROM audit_records"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq"
	if f.Desc {
		q += " DESC"
	}
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += " LIMIT " + param(len(args))
	}
	return q, args, nil
}

// Scanner is a row of any driver (*sql.Row, *sql.Rows, pgx.Row, pgx.Rows).
type Scanner interface {
	Scan(dest ...any) error
}

// Rows is a result set of any driver (*sql.Rows, pgx.Rows); the caller
// closes it.
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// Undecodable is a stored record that cannot be turned back into a
// Record: for verification, a record altered beyond recognition.
type Undecodable struct {
	Seq int64
	Err error
}

func (e *Undecodable) Error() string { return fmt.Sprintf("record %d: %v", e.Seq, e.Err) }
func (e *Undecodable) Unwrap() error { return e.Err }

// ScanRecord rebuilds a record from its row (RecordColumns). The columns
// take precedence over the same fields in body: they are what queries
// select on, so they must be what verification hashes.
func ScanRecord(row Scanner) (*audit.Record, error) {
	var (
		seq                                           int64
		id, tm, tenant, agent, decision, kind, callID string
		body, hash                                    string
	)
	if err := row.Scan(&seq, &id, &tm, &tenant, &agent, &decision, &kind, &callID, &body, &hash); err != nil {
		return nil, err
	}
	var r audit.Record
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, &Undecodable{seq, fmt.Errorf("body: %w", err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &Undecodable{seq, errors.New("body: data after the record")}
	}
	t, err := time.Parse(time.RFC3339Nano, tm)
	if err != nil {
		return nil, &Undecodable{seq, fmt.Errorf("time column: %w", err)}
	}
	r.Seq, r.ID, r.Time, r.Hash = seq, id, t, hash
	r.Tenant, r.Agent, r.Decision, r.Kind, r.CallID = tenant, agent, decision, kind, callID
	return &r, nil
}

// ScanRecords calls fn with the record of each row, stopping at the first
// error fn returns (returned as is); wrap prefixes the others.
func ScanRecords(rows Rows, wrap string, fn func(*audit.Record) error) error {
	for rows.Next() {
		r, err := ScanRecord(rows)
		if err != nil {
			return fmt.Errorf("%s: %w", wrap, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", wrap, err)
	}
	return nil
}

// ScanCheckpoints reads the rows of
// SELECT seq, hash, time, key_id, signature FROM audit_checkpoints.
func ScanCheckpoints(rows Rows) ([]audit.Checkpoint, error) {
	var out []audit.Checkpoint
	for rows.Next() {
		var cp audit.Checkpoint
		var tm string
		if err := rows.Scan(&cp.Seq, &cp.Hash, &tm, &cp.KeyID, &cp.Signature); err != nil {
			return nil, fmt.Errorf("audit checkpoints: %w", err)
		}
		// A time that does not parse cannot match its signature; leave it
		// zero and let verification say so.
		cp.Time, _ = time.Parse(time.RFC3339Nano, tm)
		out = append(out, cp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	return out, nil
}

// VerifyResult turns what verifying a trail gave into VerifyAudit's
// answer: readErr is the error of reading the records into v (v.Add's own
// errors included), res and verr are v.Result(). A broken chain is a
// *audit.VerifyError naming the first bad seq; any other error means the
// trail could not be read.
func VerifyResult(readErr error, res audit.VerifyResult, verr error) (audit.VerifyResult, error) {
	var bad *Undecodable
	switch {
	case errors.As(readErr, &bad):
		if next := res.LastSeq + 1; next < bad.Seq {
			return res, &audit.VerifyError{Seq: next, Problem: fmt.Sprintf("record missing (the next record stored has seq %d)", bad.Seq)}
		}
		return res, &audit.VerifyError{Seq: bad.Seq, Problem: "stored record cannot be decoded: " + bad.Err.Error()}
	case readErr != nil && verr == nil:
		return res, readErr
	}
	return res, verr
}
