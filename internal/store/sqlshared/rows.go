package sqlshared

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/dispatch"
	"github.com/warden-dev/warden/internal/secret"
	"github.com/warden-dev/warden/internal/store"
)

// CallRow is what the calls table stores of a call's state.
type CallRow struct {
	Body, Args       string
	Expires          any // the expiry of a pending call, else NULL
	Created, Updated string
}

// NewCallRow returns the column values of st.
func NewCallRow(st *dispatch.State) (CallRow, error) {
	body, err := json.Marshal(st)
	if err != nil {
		return CallRow{}, fmt.Errorf("commit call %s: %w", st.ID, err)
	}
	r := CallRow{Body: string(body), Args: string(st.Args),
		Created: st.CreatedAt.UTC().Format(TimeColumn), Updated: st.UpdatedAt.UTC().Format(TimeColumn)}
	if r.Args == "" {
		r.Args = "{}"
	}
	if st.ExpiresAt != nil && st.Status == dispatch.StatusPending {
		r.Expires = st.ExpiresAt.UTC().Format(TimeColumn)
	}
	return r, nil
}

// CallColumns are the calls columns ScanCall reads, in order.
const CallColumns = "body, args, revision"

// ScanCall reads a call's state from a row of CallColumns.
func ScanCall(row Scanner) (*dispatch.State, error) {
	var body, args string
	var rev int64
	if err := row.Scan(&body, &args, &rev); err != nil {
		return nil, err
	}
	return decodeCall(body, args, rev)
}

func decodeCall(body, args string, rev int64) (*dispatch.State, error) {
	var st dispatch.State
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, err
	}
	st.Args = json.RawMessage(args)
	st.Revision = rev
	return &st, nil
}

// ScanCalls reads every row of CallColumns.
func ScanCalls(rows Rows) ([]*dispatch.State, error) {
	var out []*dispatch.State
	for rows.Next() {
		st, err := ScanCall(rows)
		if err != nil {
			return nil, fmt.Errorf("query calls: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// ScanKilledCalls reads up to limit calls from rows of CallColumns and a
// kill switch's by, at, why, keeping each call's first row only.
func ScanKilledCalls(rows Rows, limit int) ([]dispatch.KilledCall, error) {
	var out []dispatch.KilledCall
	seen := map[string]bool{}
	for rows.Next() {
		var body, args, by, at, why string
		var rev int64
		if err := rows.Scan(&body, &args, &rev, &by, &at, &why); err != nil {
			return nil, fmt.Errorf("killed pending calls: %w", err)
		}
		st, err := decodeCall(body, args, rev)
		if err != nil {
			return nil, fmt.Errorf("killed pending calls: %w", err)
		}
		if seen[st.ID] {
			continue // also stopped by a later entry
		}
		seen[st.ID] = true
		k := dispatch.Kill{By: by, Why: why}
		k.At, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, dispatch.KilledCall{State: st, Kill: k})
		if len(out) == limit {
			break
		}
	}
	return out, rows.Err()
}

// ScanKillSwitches reads rows of tenant, agent, by, at, why.
func ScanKillSwitches(rows Rows) ([]store.KillSwitch, error) {
	var out []store.KillSwitch
	for rows.Next() {
		var k store.KillSwitch
		var at string
		if err := rows.Scan(&k.Tenant, &k.Agent, &k.By, &at, &k.Why); err != nil {
			return nil, fmt.Errorf("kill switches: %w", err)
		}
		k.At, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, k)
	}
	return out, rows.Err()
}

// ScanLatencies reads rows of a vote's time and its call's decision time
// (TimeColumn) into the approval latencies.
func ScanLatencies(rows Rows) ([]time.Duration, error) {
	var out []time.Duration
	for rows.Next() {
		var voted, asked string
		if err := rows.Scan(&voted, &asked); err != nil {
			return nil, fmt.Errorf("stats: approval latency: %w", err)
		}
		v, err1 := time.Parse(TimeColumn, voted)
		a, err2 := time.Parse(TimeColumn, asked)
		if err1 == nil && err2 == nil {
			out = append(out, max(v.Sub(a), 0))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: approval latency: %w", err)
	}
	return out, nil
}

// SecretColumns are the secrets columns ScanSecret reads, in order.
const SecretColumns = "name, version, key_id, nonce, ciphertext, created_at, updated_at, revoked_at"

// ScanSecret reads a secret from a row of SecretColumns.
func ScanSecret(r Scanner) (*secret.Sealed, error) {
	var sl secret.Sealed
	var created, updated string
	var revoked *string
	if err := r.Scan(&sl.Name, &sl.Version, &sl.KeyID, &sl.Nonce, &sl.Ciphertext, &created, &updated, &revoked); err != nil {
		return nil, err
	}
	var err error
	if sl.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err != nil {
		return nil, err
	}
	if sl.UpdatedAt, err = time.Parse(time.RFC3339Nano, updated); err != nil {
		return nil, err
	}
	if revoked != nil {
		t, err := time.Parse(time.RFC3339Nano, *revoked)
		if err != nil {
			return nil, err
		}
		sl.RevokedAt = &t
	}
	return &sl, nil
}

// ScanSecretList reads rows of SecretColumns, dropping nonce and
// ciphertext.
func ScanSecretList(rows Rows) ([]*secret.Sealed, error) {
	var out []*secret.Sealed
	for rows.Next() {
		sl, err := ScanSecret(rows)
		if err != nil {
			return nil, err
		}
		sl.Nonce, sl.Ciphertext = nil, nil
		out = append(out, sl)
	}
	return out, rows.Err()
}

// SealSecret seals the next version of secret name, whose current row is
// cur (nil if none), for create (rotate false) or rotate, refusing to
// create a live secret or rotate one that is absent or revoked. The
// result's CreatedAt and UpdatedAt are the row's.
func SealSecret(name string, cur *secret.Sealed, rotate bool, seal store.SealFunc) (*secret.Sealed, error) {
	live := cur != nil && cur.RevokedAt == nil
	if rotate && !live {
		return nil, fmt.Errorf("secret %s: %w (or revoked); create it with set", name, secret.ErrNotFound)
	}
	if !rotate && live {
		return nil, fmt.Errorf("secret %s: %w", name, store.ErrSecretExists)
	}
	now := time.Now().UTC()
	version, created := int64(1), now
	if cur != nil {
		version, created = cur.Version+1, cur.CreatedAt
	}
	sl, err := seal(version)
	if err != nil {
		return nil, err
	}
	sl.CreatedAt, sl.UpdatedAt = created, now
	return sl, nil
}

// SecretTime formats a secrets time column.
func SecretTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// VersionPrefix normalises a config version hash or prefix.
func VersionPrefix(prefix string) (string, error) {
	prefix = strings.ToLower(strings.TrimSpace(prefix))
	if prefix == "" || strings.Trim(prefix, "0123456789abcdef") != "" {
		return "", fmt.Errorf("version %q: %w (want a hex hash or prefix)", prefix, store.ErrNotFound)
	}
	return prefix, nil
}

// OneVersion returns the one version of rows (of config_versions.version
// starting with prefix): ErrNotFound or ErrAmbiguous otherwise.
func OneVersion(prefix string, rows Rows) (string, error) {
	var found []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return "", fmt.Errorf("config version: %w", err)
		}
		found = append(found, v)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("config version: %w", err)
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("version %s: %w", prefix, store.ErrNotFound)
	case 1:
		return found[0], nil
	default:
		return "", fmt.Errorf("version %s: %w", prefix, store.ErrAmbiguous)
	}
}

// ScanConfigVersions reads rows of version, author, message, created_at,
// marking live the one that is.
func ScanConfigVersions(rows Rows, live string) ([]store.ConfigVersion, error) {
	var out []store.ConfigVersion
	for rows.Next() {
		var cv store.ConfigVersion
		var created string
		if err := rows.Scan(&cv.Version, &cv.Author, &cv.Message, &created); err != nil {
			return nil, fmt.Errorf("config versions: %w", err)
		}
		cv.CreatedAt, _ = time.Parse(TimeColumn, created)
		cv.Live = cv.Version == live
		out = append(out, cv)
	}
	return out, rows.Err()
}
