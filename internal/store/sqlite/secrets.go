package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/warden-dev/warden/internal/secret"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

// The store keeps local:// secrets sealed; it never sees a master key or a
// plaintext. Sealing and opening are internal/secret's: the functions below
// take the sealing step as a callback so that it runs inside the
// transaction that picks the version.

var _ secret.LocalStore = (*Store)(nil)

// ErrSecretExists is returned when creating a secret that already exists.
var ErrSecretExists = store.ErrSecretExists

// LocalSecret returns the current row of name; an absent name is an error
// wrapping secret.ErrNotFound.
func (s *Store) LocalSecret(ctx context.Context, name string) (*secret.Sealed, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+sqlshared.SecretColumns+` FROM secrets WHERE name = ?`, name)
	sl, err := scanSecret(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("local secret %s: %w", name, secret.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("local secret %s: %w", name, err)
	}
	return sl, nil
}

// CreateSecret stores version 1 of a new secret, or the next version of a
// revoked one. It fails with ErrSecretExists if name is live.
func (s *Store) CreateSecret(ctx context.Context, name string, seal store.SealFunc) (*secret.Sealed, error) {
	return s.putSecret(ctx, name, false, seal)
}

// RotateSecret replaces a live secret's value with the next version. It
// fails with an error wrapping secret.ErrNotFound if name is absent or
// revoked.
func (s *Store) RotateSecret(ctx context.Context, name string, seal store.SealFunc) (*secret.Sealed, error) {
	return s.putSecret(ctx, name, true, seal)
}

func (s *Store) putSecret(ctx context.Context, name string, rotate bool, seal store.SealFunc) (*secret.Sealed, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	cur, err := scanSecret(tx.QueryRowContext(ctx, `SELECT `+sqlshared.SecretColumns+` FROM secrets WHERE name = ?`, name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		cur = nil
	case err != nil:
		return nil, err
	}
	sl, err := sqlshared.SealSecret(name, cur, rotate, seal)
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO secrets (name, version, key_id, nonce, ciphertext, created_at, updated_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, NULL)
		ON CONFLICT (name) DO UPDATE SET version = excluded.version, key_id = excluded.key_id, nonce = excluded.nonce,
			ciphertext = excluded.ciphertext, updated_at = excluded.updated_at, revoked_at = NULL`,
		name, sl.Version, sl.KeyID, sl.Nonce, sl.Ciphertext, sqlshared.SecretTime(sl.CreatedAt), sqlshared.SecretTime(sl.UpdatedAt))
	if err != nil {
		return nil, fmt.Errorf("store secret %s: %w", name, err)
	}
	return sl, tx.Commit()
}

// RevokeSecret revokes name: its ciphertext is wiped at once, so no key can
// recover the value, and every later read fails with secret.ErrRevoked.
func (s *Store) RevokeSecret(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE secrets SET revoked_at = ?, nonce = X'', ciphertext = X'' WHERE name = ? AND revoked_at IS NULL`,
		sqlshared.SecretTime(time.Now().UTC()), name)
	if err != nil {
		return fmt.Errorf("revoke secret %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("secret %s: %w (or already revoked)", name, secret.ErrNotFound)
	}
	return nil
}

// Secrets lists every secret's name, version, key id and dates, without
// nonce or ciphertext, by name.
func (s *Store) Secrets(ctx context.Context) ([]*secret.Sealed, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, version, key_id, X'', X'', created_at, updated_at, revoked_at FROM secrets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanSecretList(rows)
}

// RekeySecrets re-encrypts every live secret with reseal (open under the
// old master key, seal under the new) in one transaction: either all move
// to the new key or none does. Revoked rows only take the new key id. It
// returns how many secrets were re-encrypted.
func (s *Store) RekeySecrets(ctx context.Context, newKeyID string, reseal func(*secret.Sealed) (*secret.Sealed, error)) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	rows, err := tx.QueryContext(ctx, `SELECT `+sqlshared.SecretColumns+` FROM secrets ORDER BY name`)
	if err != nil {
		return 0, err
	}
	var all []*secret.Sealed
	for rows.Next() {
		sl, err := scanSecret(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, sl)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, old := range all {
		if old.RevokedAt != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE secrets SET key_id = ? WHERE name = ?`, newKeyID, old.Name); err != nil {
				return 0, err
			}
			continue
		}
		sl, err := reseal(old)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE secrets SET key_id = ?, nonce = ?, ciphertext = ? WHERE name = ? AND version = ?`,
			sl.KeyID, sl.Nonce, sl.Ciphertext, old.Name, old.Version); err != nil {
			return 0, err
		}
		n++
	}
	return n, tx.Commit()
}

var scanSecret = sqlshared.ScanSecret
