package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/identity"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

// ErrNotFound is returned when a token, call or record does not exist.
var ErrNotFound = store.ErrNotFound

// TokenInfo describes a token, never its value.
type TokenInfo = store.TokenInfo

// CreateToken stores a new token for p and returns its value, which is not
// stored and cannot be shown again.
func (s *Store) CreateToken(ctx context.Context, p call.Principal) (string, TokenInfo, error) {
	t, err := sqlshared.NewToken(p)
	if err != nil {
		return "", t.Info, err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO tokens (id, hash, role, tenant, agent, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.Info.ID, t.Hash, string(p.Role), p.Tenant, p.Agent, p.Name, t.Created)
	if err != nil {
		return "", t.Info, fmt.Errorf("create token: %w", err)
	}
	return t.Token, t.Info, nil
}

// Authenticate returns the principal of an unrevoked token, or ErrNotFound.
func (s *Store) Authenticate(ctx context.Context, token string) (call.Principal, error) {
	if identity.Check(token) != nil {
		return call.Principal{}, ErrNotFound
	}
	var p call.Principal
	var role string
	err := s.db.QueryRowContext(ctx, `SELECT id, role, tenant, agent, name FROM tokens WHERE hash = ? AND revoked_at IS NULL`,
		identity.Hash(token)).Scan(&p.TokenID, &role, &p.Tenant, &p.Agent, &p.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return call.Principal{}, ErrNotFound
	}
	if err != nil {
		return call.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	p.Role = call.Role(role)
	return p, nil
}

// RevokeToken revokes one token by id.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
		time.Now().UTC().Format(time.RFC3339Nano), id)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %s: %w (or already revoked)", id, ErrNotFound)
	}
	return nil
}

// RevokeAgentTokens revokes every token of an agent and returns how many.
func (s *Store) RevokeAgentTokens(ctx context.Context, tenant, agent string) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE role = 'agent' AND tenant = ? AND agent = ? AND revoked_at IS NULL`,
		time.Now().UTC().Format(time.RFC3339Nano), tenant, agent)
	if err != nil {
		return 0, fmt.Errorf("revoke tokens: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Tokens lists every token, newest first.
func (s *Store) Tokens(ctx context.Context) ([]TokenInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sqlshared.TokenColumns+` FROM tokens ORDER BY created_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanTokens(rows)
}
