package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-dev/warden/internal/secret"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/sqlshared"
)

// ErrSecretExists is returned when creating a secret that already exists.
var ErrSecretExists = store.ErrSecretExists

const secretColumns = sqlshared.SecretColumns

// LocalSecret returns the current row of name; an absent name is an error
// wrapping secret.ErrNotFound.
func (s *Store) LocalSecret(ctx context.Context, name string) (*secret.Sealed, error) {
	sl, err := scanSecret(s.pool.QueryRow(ctx, `SELECT `+secretColumns+` FROM secrets WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
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

// RotateSecret replaces a live secret's value with the next version.
func (s *Store) RotateSecret(ctx context.Context, name string, seal store.SealFunc) (*secret.Sealed, error) {
	return s.putSecret(ctx, name, true, seal)
}

func (s *Store) putSecret(ctx context.Context, name string, rotate bool, seal store.SealFunc) (*secret.Sealed, error) {
	var sl *secret.Sealed
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Serialise writers of this name (also when it does not exist yet).
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('warden_secret:' || $1))", name); err != nil {
			return err
		}
		cur, err := scanSecret(tx.QueryRow(ctx, `SELECT `+secretColumns+` FROM secrets WHERE name = $1`, name))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			cur = nil
		case err != nil:
			return err
		}
		if sl, err = sqlshared.SealSecret(name, cur, rotate, seal); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `INSERT INTO secrets (name, version, key_id, nonce, ciphertext, created_at, updated_at, revoked_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version, key_id = excluded.key_id, nonce = excluded.nonce,
				ciphertext = excluded.ciphertext, updated_at = excluded.updated_at, revoked_at = NULL`,
			name, sl.Version, sl.KeyID, sl.Nonce, sl.Ciphertext, sqlshared.SecretTime(sl.CreatedAt), sqlshared.SecretTime(sl.UpdatedAt)); err != nil {
			return fmt.Errorf("store secret %s: %w", name, err)
		}
		return notify(ctx, tx, store.EventSecret)
	})
	if err != nil {
		return nil, err
	}
	return sl, nil
}

// RevokeSecret revokes name: its ciphertext is wiped at once.
func (s *Store) RevokeSecret(ctx context.Context, name string) error {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE secrets SET revoked_at = $1, nonce = ''::bytea, ciphertext = ''::bytea WHERE name = $2 AND revoked_at IS NULL`,
			sqlshared.SecretTime(time.Now().UTC()), name)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return notify(ctx, tx, store.EventSecret)
	})
	if err != nil {
		return fmt.Errorf("revoke secret %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("secret %s: %w (or already revoked)", name, secret.ErrNotFound)
	}
	return nil
}

// Secrets lists every secret without nonce or ciphertext, by name.
func (s *Store) Secrets(ctx context.Context) ([]*secret.Sealed, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, version, key_id, ''::bytea, ''::bytea, created_at, updated_at, revoked_at FROM secrets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	defer rows.Close()
	return sqlshared.ScanSecretList(rows)
}

// RekeySecrets re-encrypts every live secret with reseal in one
// transaction; revoked rows only take the new key id.
func (s *Store) RekeySecrets(ctx context.Context, newKeyID string, reseal func(*secret.Sealed) (*secret.Sealed, error)) (int, error) {
	n := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+secretColumns+` FROM secrets ORDER BY name FOR UPDATE`)
		if err != nil {
			return err
		}
		var all []*secret.Sealed
		for rows.Next() {
			sl, err := scanSecret(rows)
			if err != nil {
				rows.Close()
				return err
			}
			all = append(all, sl)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, old := range all {
			if old.RevokedAt != nil {
				if _, err := tx.Exec(ctx, `UPDATE secrets SET key_id = $1 WHERE name = $2`, newKeyID, old.Name); err != nil {
					return err
				}
				continue
			}
			sl, err := reseal(old)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE secrets SET key_id = $1, nonce = $2, ciphertext = $3 WHERE name = $4 AND version = $5`,
				sl.KeyID, sl.Nonce, sl.Ciphertext, old.Name, old.Version); err != nil {
				return err
			}
			n++
		}
		return notify(ctx, tx, store.EventSecret)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

var scanSecret = sqlshared.ScanSecret
