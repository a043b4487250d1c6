package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

var _ dispatch.Store = (*Store)(nil)

// Commit appends rec to the audit trail and saves st, in one group-committed
// transaction. A state change whose PrevStatus no longer matches the stored
// status, or whose Revision is not the stored one (someone else changed the
// call since st was read, e.g. a concurrent vote), fails with
// dispatch.ErrConflict, and then rec is not appended.
func (s *Store) Commit(ctx context.Context, rec *audit.Record, st *dispatch.State) error {
	row, err := sqlshared.NewCallRow(st)
	if err != nil {
		return err
	}
	apply := func(ctx context.Context, tx *sql.Tx) error {
		if st.PrevStatus == "" {
			_, err := tx.ExecContext(ctx, `INSERT INTO calls (id, tenant, agent, status, expires_at, created_at, updated_at, args, body)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				st.ID, st.Tenant, st.Agent, st.Status, row.Expires, row.Created, row.Updated, row.Args, row.Body)
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE calls SET status = ?, expires_at = ?, updated_at = ?, body = ?, revision = revision + 1
			WHERE id = ? AND status = ? AND revision = ?`,
			st.Status, row.Expires, row.Updated, row.Body, st.ID, st.PrevStatus, st.Revision)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return sqlshared.Skip(dispatch.ErrConflict)
		}
		if rec.Kind == audit.KindReportedOutcome {
			return addUsage(ctx, tx, rec) // usage.go: reported tokens and cost count towards the budgets
		}
		return nil
	}
	if err := s.appendWith(ctx, rec, apply); err != nil {
		return err
	}
	if st.PrevStatus != "" {
		st.Revision++
	}
	return nil
}

// CallState returns a call's state, or dispatch.ErrNotFound.
func (s *Store) CallState(ctx context.Context, id string) (*dispatch.State, error) {
	st, err := sqlshared.ScanCall(s.db.QueryRowContext(ctx, `SELECT body, args, revision FROM calls WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dispatch.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read call %s: %w", id, err)
	}
	return st, nil
}

// DuePending returns up to limit pending calls whose expiry has passed.
func (s *Store) DuePending(ctx context.Context, now time.Time, limit int) ([]*dispatch.State, error) {
	return s.callsWhere(ctx, `status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?`, now.UTC().Format(timeColumn), limit)
}

// Killed returns the kill switch entry that stops tenant/agent, or nil.
func (s *Store) Killed(ctx context.Context, tenant, agent string) (*dispatch.Kill, error) {
	var k dispatch.Kill
	var at string
	err := s.db.QueryRowContext(ctx, `SELECT by, at, why FROM kills
		WHERE (tenant = ? AND agent IN (?, '*')) OR (tenant = '*' AND agent = '*')
		ORDER BY at LIMIT 1`, tenant, agent).Scan(&k.By, &at, &k.Why)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kill switch: %w", err)
	}
	k.At, _ = time.Parse(time.RFC3339Nano, at)
	return &k, nil
}

// Kill sets the kill switch for tenant/agent ("*" for all). It reports
// false when that switch was already set (the first kill's author and time
// stay).
func (s *Store) Kill(ctx context.Context, tenant, agent, by, why string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO kills (tenant, agent, by, at, why) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tenant, agent) DO NOTHING`, tenant, agent, by, time.Now().UTC().Format(time.RFC3339Nano), why)
	if err != nil {
		return false, fmt.Errorf("kill: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Revive clears the kill switch for tenant/agent; it reports whether one was set.
func (s *Store) Revive(ctx context.Context, tenant, agent string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM kills WHERE tenant = ? AND agent = ?`, tenant, agent)
	if err != nil {
		return false, fmt.Errorf("revive: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// StaleRunning returns up to limit calls still marked running whose last
// change is older than before: their execution was cut off.
func (s *Store) StaleRunning(ctx context.Context, before time.Time, limit int) ([]*dispatch.State, error) {
	return s.callsWhere(ctx, `status = 'running' AND updated_at <= ? ORDER BY updated_at LIMIT ?`, before.UTC().Format(timeColumn), limit)
}

func (s *Store) callsWhere(ctx context.Context, where string, args ...any) ([]*dispatch.State, error) {
	return s.queryCalls(ctx, `SELECT body, args, revision FROM calls WHERE `+where, args...)
}

// queryCalls runs a query selecting body, args and revision of calls.
func (s *Store) queryCalls(ctx context.Context, q string, args ...any) ([]*dispatch.State, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query calls: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanCalls(rows)
}
