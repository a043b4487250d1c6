package secret

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// MasterKeyEnv is the environment variable that holds the master key of
// the local:// store: the standard base64 encoding of 32 random bytes
// (`openssl rand -base64 32`).
const MasterKeyEnv = "WARDEN_MASTER_KEY"

// MasterKey is the AES-256 key that encrypts local:// secrets. It never
// prints itself.
type MasterKey struct {
	key []byte
	id  string
}

// ParseMasterKey decodes a master key: base64 (standard or URL alphabet,
// padded or not) of exactly 32 bytes; surrounding whitespace is ignored.
func ParseMasterKey(s string) (*MasterKey, error) {
	s = strings.TrimSpace(s)
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("master key is not base64; generate one with: openssl rand -base64 32")
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("master key decodes to %d bytes; it must be 32 (openssl rand -base64 32)", len(b))
	}
	sum := sha256.Sum256(append([]byte("warden master key id\x00"), b...))
	return &MasterKey{key: b, id: hex.EncodeToString(sum[:8])}, nil
}

// LoadMasterKey reads the master key from file when file is not empty,
// else from $WARDEN_MASTER_KEY. It returns nil and no error when neither is
// set: local:// references then fail with ErrNoMasterKey.
func LoadMasterKey(file string) (*MasterKey, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("master key file: %w", err)
		}
		k, err := ParseMasterKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("master key file %s: %w", file, err)
		}
		return k, nil
	}
	if s, ok := os.LookupEnv(MasterKeyEnv); ok && strings.TrimSpace(s) != "" {
		k, err := ParseMasterKey(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", MasterKeyEnv, err)
		}
		return k, nil
	}
	return nil, nil
}

// ID identifies the key without revealing it (a truncated hash of it).
func (k *MasterKey) ID() string { return k.id }

func (k *MasterKey) String() string             { return "master key " + k.id }
func (k *MasterKey) GoString() string           { return "secret.MasterKey(" + k.id + ")" }
func (k *MasterKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// Sealed is one encrypted local secret as the store keeps it.
type Sealed struct {
	Name       string
	Version    int64
	KeyID      string // the master key's ID
	Nonce      []byte // 12 bytes, fresh for every encryption
	Ciphertext []byte // AES-256-GCM, tag included
	CreatedAt  time.Time
	UpdatedAt  time.Time
	RevokedAt  *time.Time
}

// aad binds a ciphertext to its row: moving it to another name or version,
// or relabelling its key, makes it fail authentication.
func aad(name string, version int64, keyID string) []byte {
	return []byte("warden local secret\x00" + name + "\x00" + strconv.FormatInt(version, 10) + "\x00" + keyID)
}

// Seal encrypts value as version of name under k, with a fresh nonce.
func (k *MasterKey) Seal(name string, version int64, value Value) (*Sealed, error) {
	gcm, err := k.gcm()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	ct := gcm.Seal(nil, nonce, []byte(value.s), aad(name, version, k.id))
	return &Sealed{Name: name, Version: version, KeyID: k.id, Nonce: nonce, Ciphertext: ct}, nil
}

// Open decrypts s. A revoked secret, a different key and a tampered
// ciphertext are refused; nothing is decrypted under a wrong key.
func (k *MasterKey) Open(s *Sealed) (Value, error) {
	ref := "local://" + s.Name
	if s.RevokedAt != nil {
		return Value{}, &Error{Ref: ref, Err: ErrRevoked, Reason: "since " + s.RevokedAt.UTC().Format(time.RFC3339)}
	}
	if s.KeyID != k.id {
		return Value{}, &Error{Ref: ref, Err: ErrWrongKey, Reason: fmt.Sprintf("stored under key id %s, the master key given has id %s", s.KeyID, k.id)}
	}
	gcm, err := k.gcm()
	if err != nil {
		return Value{}, err
	}
	if len(s.Nonce) != gcm.NonceSize() {
		return Value{}, &Error{Ref: ref, Err: ErrTampered}
	}
	pt, err := gcm.Open(nil, s.Nonce, s.Ciphertext, aad(s.Name, s.Version, s.KeyID))
	if err != nil {
		return Value{}, &Error{Ref: ref, Err: ErrTampered}
	}
	return NewValue(string(pt)), nil
}

func (k *MasterKey) gcm() (cipher.AEAD, error) {
	block, err := aes.NewCipher(k.key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// LocalStore reads sealed local secrets; the SQLite store implements it.
type LocalStore interface {
	// LocalSecret returns the current version of name, or an error
	// wrapping ErrNotFound.
	LocalSecret(ctx context.Context, name string) (*Sealed, error)
}

// Local resolves local://NAME from warden's own store. It reads the store
// on every call (Uncached), so rotation and revocation take effect on the
// next call.
type Local struct {
	Store LocalStore
	Key   *MasterKey // nil: every read fails with ErrNoMasterKey
}

func (l *Local) Uncached() bool { return true }

func (l *Local) Resolve(ctx context.Context, r Ref) (Value, error) {
	if l.Key == nil {
		return Value{}, &Error{Ref: r.String(), Err: ErrNoMasterKey}
	}
	s, err := l.Store.LocalSecret(ctx, r.Path)
	if errors.Is(err, ErrNotFound) {
		return Value{}, &Error{Ref: r.String(), Err: ErrNotFound, Reason: "no such secret; set it with: warden secrets set " + r.Path}
	}
	if err != nil {
		return Value{}, &Error{Ref: r.String(), Err: ErrUnavailable, Reason: "cannot read the store"}
	}
	return l.Key.Open(s)
}

var (
	_ Provider = (*Local)(nil)
	_ Uncached = (*Local)(nil)
	_ Provider = Env{}
	_ Provider = File{}
)

// Reseal opens s under k and seals its value under next, keeping its name
// and version: the step `warden secrets rekey` takes for every secret.
func (k *MasterKey) Reseal(s *Sealed, next *MasterKey) (*Sealed, error) {
	v, err := k.Open(s)
	if err != nil {
		return nil, err
	}
	return next.Seal(s.Name, s.Version, v)
}
