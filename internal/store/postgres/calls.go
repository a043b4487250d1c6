package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-dev/warden/internal/approval"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/identity"
	"github.com/warden-dev/warden/internal/limit"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

// Commit appends rec to the audit trail and saves st, in one transaction
// of the group commit, conditional on st.PrevStatus and st.Revision
// (dispatch.ErrConflict otherwise, and rec is not appended). The commit
// announces call:<id> to every replica.
func (s *Store) Commit(ctx context.Context, rec *audit.Record, st *dispatch.State) error {
	row, err := sqlshared.NewCallRow(st)
	if err != nil {
		return err
	}
	// approval_id is written here, not derived from body in SQL: body may
	// hold what jsonb refuses (\u0000 in a connector's result).
	var approvalID any
	if st.Approval != nil && st.Approval.ID != "" {
		approvalID = st.Approval.ID
	}
	// One statement (pipelined with the batch's others, see insert), unless
	// a reported outcome's usage must be added if and only if the call
	// changes: that takes a second statement, run by apply alone.
	var stmt *sqlshared.Stmt
	if st.PrevStatus == "" {
		stmt = &sqlshared.Stmt{
			SQL: `INSERT INTO calls (id, tenant, agent, status, expires_at, created_at, updated_at, args, body, approval_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			Args: []any{st.ID, st.Tenant, st.Agent, st.Status, row.Expires, row.Created, row.Updated, row.Args, row.Body, approvalID},
		}
	} else {
		stmt = &sqlshared.Stmt{
			SQL: `UPDATE calls SET status = $1, expires_at = $2, updated_at = $3, body = $4, approval_id = $5, revision = revision + 1
			WHERE id = $6 AND status = $7 AND revision = $8`,
			Args:   []any{st.Status, row.Expires, row.Updated, row.Body, approvalID, st.ID, st.PrevStatus, st.Revision},
			NoRows: dispatch.ErrConflict,
		}
	}
	apply := stmtApply(stmt)
	if st.PrevStatus != "" && rec.Kind == audit.KindReportedOutcome && (rec.Tokens != 0 || rec.CostUSD != 0) {
		change := apply
		apply = func(ctx context.Context, tx pgx.Tx) error {
			if err := change(ctx, tx); err != nil {
				return err
			}
			return addUsage(ctx, tx, rec)
		}
		stmt = nil
	}
	events := []string{store.EventCall + ":" + st.ID}
	if st.Status == dispatch.StatusApproved {
		events = append(events, store.EventApproved) // for the replicas' approved-call sweeps
	}
	if err := s.writer.EnqueueStmt(ctx, rec, apply, stmt, events); err != nil {
		return err
	}
	if st.PrevStatus != "" {
		st.Revision++
	}
	return nil
}

const callColumns = sqlshared.CallColumns

// CallState returns a call's state, or dispatch.ErrNotFound.
func (s *Store) CallState(ctx context.Context, id string) (*dispatch.State, error) {
	st, err := sqlshared.ScanCall(s.pool.QueryRow(ctx, `SELECT `+callColumns+` FROM calls WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, dispatch.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read call %s: %w", id, err)
	}
	return st, nil
}

// DuePending returns up to limit pending calls whose expiry has passed.
func (s *Store) DuePending(ctx context.Context, now time.Time, limit int) ([]*dispatch.State, error) {
	return s.queryCalls(ctx, `SELECT `+callColumns+` FROM calls WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2`,
		now.UTC().Format(timeColumn), limit)
}

// StaleRunning returns up to limit calls still running whose last change
// is older than before.
func (s *Store) StaleRunning(ctx context.Context, before time.Time, limit int) ([]*dispatch.State, error) {
	return s.queryCalls(ctx, `SELECT `+callColumns+` FROM calls WHERE status = 'running' AND updated_at <= $1 ORDER BY updated_at LIMIT $2`,
		before.UTC().Format(timeColumn), limit)
}

func (s *Store) queryCalls(ctx context.Context, q string, args ...any) ([]*dispatch.State, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query calls: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanCalls(rows)
}

// Killed returns the kill switch entry that stops tenant/agent, or nil.
func (s *Store) Killed(ctx context.Context, tenant, agent string) (*dispatch.Kill, error) {
	var k dispatch.Kill
	var at string
	err := s.pool.QueryRow(ctx, `SELECT "by", at, why FROM kills
		WHERE (tenant = $1 AND agent IN ($2, '*')) OR (tenant = '*' AND agent = '*')
		ORDER BY at LIMIT 1`, tenant, agent).Scan(&k.By, &at, &k.Why)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kill switch: %w", err)
	}
	k.At, _ = time.Parse(time.RFC3339Nano, at)
	return &k, nil
}

// Kill sets the kill switch for tenant/agent ("*" for all) and tells every
// replica. It reports false when that switch was already set.
func (s *Store) Kill(ctx context.Context, tenant, agent, by, why string) (bool, error) {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO kills (tenant, agent, "by", at, why) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant, agent) DO NOTHING`, tenant, agent, by, time.Now().UTC().Format(time.RFC3339Nano), why)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return notify(ctx, tx, store.EventKill)
	})
	if err != nil {
		return false, fmt.Errorf("kill: %w", err)
	}
	return n > 0, nil
}

// Revive clears the kill switch for tenant/agent; it reports whether one was set.
func (s *Store) Revive(ctx context.Context, tenant, agent string) (bool, error) {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM kills WHERE tenant = $1 AND agent = $2`, tenant, agent)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return notify(ctx, tx, store.EventKill)
	})
	if err != nil {
		return false, fmt.Errorf("revive: %w", err)
	}
	return n > 0, nil
}

// inTx runs fn in a transaction and commits it.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// KillSwitches lists the kill switches that are set, oldest first.
func (s *Store) KillSwitches(ctx context.Context) ([]store.KillSwitch, error) {
	rows, err := s.pool.Query(ctx, `SELECT tenant, agent, "by", at, why FROM kills ORDER BY at, tenant, agent LIMIT $1`, store.MaxKillSwitches)
	if err != nil {
		return nil, fmt.Errorf("kill switches: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanKillSwitches(rows)
}

// KilledPending returns up to limit pending calls whose agent a kill
// switch now stops, oldest first, each with the (oldest) entry that does.
func (s *Store) KilledPending(ctx context.Context, limit int) ([]dispatch.KilledCall, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.body, c.args, c.revision, k."by", k.at, k.why
		FROM calls c JOIN kills k
		  ON (k.tenant = c.tenant AND k.agent IN (c.agent, '*')) OR (k.tenant = '*' AND k.agent = '*')
		WHERE c.status = 'pending'
		ORDER BY c.created_at, k.at
		LIMIT $1`, limit*4)
	if err != nil {
		return nil, fmt.Errorf("killed pending calls: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanKilledCalls(rows, limit)
}

// PendingCount returns how many calls wait for a human.
func (s *Store) PendingCount(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM calls WHERE status = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("pending calls: %w", err)
	}
	return n, nil
}

// CallByApproval returns the call an approval request belongs to, or
// dispatch.ErrNotFound.
func (s *Store) CallByApproval(ctx context.Context, approvalID string) (*dispatch.State, error) {
	sts, err := s.queryCalls(ctx, `SELECT `+callColumns+` FROM calls WHERE approval_id = $1`, approvalID)
	if err != nil {
		return nil, fmt.Errorf("read approval %s: %w", approvalID, err)
	}
	if len(sts) == 0 {
		return nil, dispatch.ErrNotFound
	}
	return sts[0], nil
}

// ApprovalCalls returns calls with an approval request in tenant ("" for
// every tenant), in one call status or any (""), newest first.
func (s *Store) ApprovalCalls(ctx context.Context, tenant, status string, limit int) ([]*dispatch.State, error) {
	q := `SELECT ` + callColumns + ` FROM calls WHERE approval_id IS NOT NULL`
	var args []any
	if tenant != "" {
		args = append(args, tenant)
		q += fmt.Sprintf(` AND tenant = $%d`, len(args))
	}
	if status != "" {
		args = append(args, status)
		q += fmt.Sprintf(` AND status = $%d`, len(args))
	}
	args = append(args, limit)
	q += fmt.Sprintf(` ORDER BY created_at DESC LIMIT $%d`, len(args))
	sts, err := s.queryCalls(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	return sts, nil
}

// ApprovedCalls returns up to limit approved calls not yet claimed for
// execution, oldest first.
func (s *Store) ApprovedCalls(ctx context.Context, limit int) ([]*dispatch.State, error) {
	sts, err := s.queryCalls(ctx, `SELECT `+callColumns+` FROM calls WHERE status = 'approved' ORDER BY updated_at LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("approved calls: %w", err)
	}
	return sts, nil
}

// ApprovalCallsSince returns every call with an approval request created
// at or after since, oldest first.
func (s *Store) ApprovalCallsSince(ctx context.Context, since time.Time) ([]*dispatch.State, error) {
	sts, err := s.queryCalls(ctx, `SELECT `+callColumns+` FROM calls
		WHERE approval_id IS NOT NULL AND created_at >= $1 ORDER BY created_at`, since.UTC().Format(timeColumn))
	if err != nil {
		return nil, fmt.Errorf("approval history: %w", err)
	}
	return sts, nil
}

// ApproverScope returns the agent/connector scope of a token (empty: any).
func (s *Store) ApproverScope(ctx context.Context, tokenID string) (approval.Scope, error) {
	var agents, connectors string
	err := s.pool.QueryRow(ctx, `SELECT scope_agents, scope_connectors FROM tokens WHERE id = $1`, tokenID).Scan(&agents, &connectors)
	if errors.Is(err, pgx.ErrNoRows) {
		return approval.Scope{}, fmt.Errorf("token %s: %w", tokenID, store.ErrNotFound)
	}
	if err != nil {
		return approval.Scope{}, fmt.Errorf("approver scope: %w", err)
	}
	return sqlshared.DecodeScope(agents, connectors)
}

// ApproverByName returns the principal of the newest unrevoked approver
// token named name, or ErrNotFound.
func (s *Store) ApproverByName(ctx context.Context, name string) (call.Principal, error) {
	var p call.Principal
	err := s.pool.QueryRow(ctx, `SELECT id, tenant, name FROM tokens
		WHERE role = 'approver' AND name = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1`, name).
		Scan(&p.TokenID, &p.Tenant, &p.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("approver %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("approver %q: %w", name, err)
	}
	p.Role = call.RoleApprover
	return p, nil
}

// Usage is what tenant/agent used on day (YYYY-MM-DD, UTC).
func (s *Store) Usage(ctx context.Context, tenant, agent, day string) (limit.Usage, error) {
	var u limit.Usage
	err := s.pool.QueryRow(ctx, `SELECT tokens, cost_usd FROM usage WHERE tenant = $1 AND agent = $2 AND day = $3`,
		tenant, agent, day).Scan(&u.Tokens, &u.CostUSD)
	if errors.Is(err, pgx.ErrNoRows) {
		return limit.Usage{}, nil
	}
	if err != nil {
		return u, fmt.Errorf("usage: %w", err)
	}
	return u, nil
}

// RecordUsage appends rec and adds its tokens and cost to its agent's
// usage on rec.Time's UTC day, in one transaction.
func (s *Store) RecordUsage(ctx context.Context, rec *audit.Record) error {
	return s.appendWith(ctx, rec, func(ctx context.Context, tx pgx.Tx) error { return addUsage(ctx, tx, rec) })
}

func addUsage(ctx context.Context, tx pgx.Tx, rec *audit.Record) error {
	if rec.Tokens == 0 && rec.CostUSD == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO usage (tenant, agent, day, tokens, cost_usd, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant, agent, day) DO UPDATE SET tokens = usage.tokens + excluded.tokens,
			cost_usd = usage.cost_usd + excluded.cost_usd, updated_at = excluded.updated_at`,
		rec.Tenant, rec.Agent, limit.Day(rec.Time), rec.Tokens, rec.CostUSD, rec.Time.UTC().Format(timeColumn))
	return err
}

// CreateToken stores a new token for p and returns its value, which is not
// stored and cannot be shown again.
func (s *Store) CreateToken(ctx context.Context, p call.Principal) (string, store.TokenInfo, error) {
	t, err := sqlshared.NewToken(p)
	if err != nil {
		return "", t.Info, err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO tokens (id, hash, role, tenant, agent, name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.Info.ID, t.Hash, string(p.Role), p.Tenant, p.Agent, p.Name, t.Created)
	if err != nil {
		return "", t.Info, fmt.Errorf("create token: %w", err)
	}
	return t.Token, t.Info, nil
}

// CreateApproverToken stores a new approver token for p limited to scope,
// in one statement, and returns its value.
func (s *Store) CreateApproverToken(ctx context.Context, p call.Principal, scope approval.Scope) (string, store.TokenInfo, error) {
	t, err := sqlshared.NewApproverToken(p, scope)
	if err != nil {
		return "", t.Info, err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO tokens (id, hash, role, tenant, agent, name, created_at, scope_agents, scope_connectors)
		VALUES ($1, $2, $3, $4, '', $5, $6, $7, $8)`,
		t.Info.ID, t.Hash, string(p.Role), p.Tenant, p.Name, t.Created, t.ScopeAgents, t.ScopeConnectors)
	if err != nil {
		return "", t.Info, fmt.Errorf("create token: %w", err)
	}
	return t.Token, t.Info, nil
}

// Authenticate returns the principal of an unrevoked token, or ErrNotFound.
func (s *Store) Authenticate(ctx context.Context, token string) (call.Principal, error) {
	if identity.Check(token) != nil {
		return call.Principal{}, store.ErrNotFound
	}
	var p call.Principal
	var role string
	err := s.pool.QueryRow(ctx, `SELECT id, role, tenant, agent, name FROM tokens WHERE hash = $1 AND revoked_at IS NULL`,
		identity.Hash(token)).Scan(&p.TokenID, &role, &p.Tenant, &p.Agent, &p.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return call.Principal{}, store.ErrNotFound
	}
	if err != nil {
		return call.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	p.Role = call.Role(role)
	return p, nil
}

// RevokeToken revokes one token by id and tells every replica.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`,
			time.Now().UTC().Format(time.RFC3339Nano), id)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return notify(ctx, tx, store.EventToken)
	})
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("token %s: %w (or already revoked)", id, store.ErrNotFound)
	}
	return nil
}

// RevokeAgentTokens revokes every token of an agent and returns how many.
func (s *Store) RevokeAgentTokens(ctx context.Context, tenant, agent string) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = $1 WHERE role = 'agent' AND tenant = $2 AND agent = $3 AND revoked_at IS NULL`,
			time.Now().UTC().Format(time.RFC3339Nano), tenant, agent)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return notify(ctx, tx, store.EventToken)
	})
	if err != nil {
		return 0, fmt.Errorf("revoke tokens: %w", err)
	}
	return int(n), nil
}

// Tokens lists every token, newest first.
func (s *Store) Tokens(ctx context.Context) ([]store.TokenInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sqlshared.TokenColumns+` FROM tokens ORDER BY created_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanTokens(rows)
}
