package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// checkpointDomain separates checkpoint signatures from anything else the
// same key might ever sign.
const checkpointDomain = "warden-audit-checkpoint-v1\n"

// Checkpoint is a signed statement that the record at Seq had hash Hash at
// Time. Signature is Ed25519 over CheckpointMessage(Seq, Hash, Time) by the
// key whose KeyID is given.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"key_id"`
	Signature []byte    `json:"signature"`
}

// CheckpointMessage is the exact byte string a checkpoint signature covers:
//
//	"warden-audit-checkpoint-v1\n" + seq + "\n" + hash + "\n" + time
//
// with seq in decimal and time in UTC RFC 3339 with nanoseconds.
func CheckpointMessage(seq int64, hash string, t time.Time) []byte {
	b := make([]byte, 0, len(checkpointDomain)+20+1+64+1+35)
	b = append(b, checkpointDomain...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, '\n')
	b = append(b, hash...)
	b = append(b, '\n')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return b
}

// KeyID names a public key: the first 16 hex digits of the SHA-256 of its
// 32 raw bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// VerifyCheckpoint checks that cp is signed by pub. It says nothing about
// whether cp matches any record; Verify does that.
func VerifyCheckpoint(pub ed25519.PublicKey, cp Checkpoint) error {
	if p := checkpointProblem(pub, cp); p != "" {
		return fmt.Errorf("audit: checkpoint at seq %d: %s", cp.Seq, p)
	}
	return nil
}

// checkpointProblem says what is wrong with cp's signature, or "".
func checkpointProblem(pub ed25519.PublicKey, cp Checkpoint) string {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Sprintf("cannot be checked: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if id := KeyID(pub); cp.KeyID != id {
		return fmt.Sprintf("signed by key %q, not by the verifying key %q", cp.KeyID, id)
	}
	if !ed25519.Verify(pub, CheckpointMessage(cp.Seq, cp.Hash, cp.Time), cp.Signature) {
		return "signature is invalid"
	}
	return ""
}

// Signer signs checkpoints. It is safe for concurrent use.
type Signer struct {
	key   ed25519.PrivateKey
	keyID string
}

// NewSigner returns a Signer for key.
func NewSigner(key ed25519.PrivateKey) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit: signing key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	return &Signer{key: key, keyID: KeyID(key.Public().(ed25519.PublicKey))}, nil
}

// Public returns the key that verifies this Signer's checkpoints.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// KeyID returns KeyID(s.Public()).
func (s *Signer) KeyID() string { return s.keyID }

// Sign returns a checkpoint over the record at seq with hash hash, signed at t.
func (s *Signer) Sign(seq int64, hash string, t time.Time) Checkpoint {
	t = t.UTC()
	return Checkpoint{
		Seq:       seq,
		Hash:      hash,
		Time:      t,
		KeyID:     s.keyID,
		Signature: ed25519.Sign(s.key, CheckpointMessage(seq, hash, t)),
	}
}

// PublicKeyPEM returns the public key as a PEM "PUBLIC KEY" block (PKIX),
// the form LoadPublicKey reads, for handing to auditors.
func (s *Signer) PublicKeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(s.Public())
	if err != nil {
		return nil, fmt.Errorf("audit: encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// LoadOrCreateKey returns the Signer whose key is in the file at path,
// creating the file with a new random key if it does not exist.
//
// The file is a PEM "PRIVATE KEY" block holding the Ed25519 key in PKCS #8,
// the form `openssl genpkey -algorithm ed25519` writes and `openssl pkey`
// reads. It is created with mode 0600 (its directory, if missing, with 0700),
// atomically, so two processes starting at once end up with the same key. An
// existing file must not be readable or writable by group or others, and
// must hold exactly one such block; anything else is an error, never a
// reason to make a new key.
//
// The key must live outside the database: whoever can rewrite the audit
// table must not also be able to sign checkpoints.
func LoadOrCreateKey(path string) (*Signer, error) {
	s, err := loadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if err := createKey(path); err != nil {
		return nil, err
	}
	return loadKey(path)
}

func loadKey(path string) (*Signer, error) {
	data, err := readPrivate(path)
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("audit: signing key %s: no PEM block found", path)
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit: signing key %s: PEM block is %q, want \"PRIVATE KEY\"", path, block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("audit: signing key %s: unexpected data after the PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: signing key %s: %T is not an Ed25519 key", path, k)
	}
	return NewSigner(key)
}

// readPrivate reads a secret file after checking that only its owner can
// read or write it.
func readPrivate(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("audit: signing key %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("audit: signing key %s: permissions %#o are too open; it must be accessible by its owner only (chmod 600)", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	return data, nil
}

// createKey writes a new key to path unless a file appears there first. The
// key is written to a temporary file and linked into place, so nobody ever
// reads a half-written key, and a concurrent creator's key is never replaced.
func createKey(path string) error {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("audit: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("audit: encode signing key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("audit: create signing key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".audit-key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("audit: create signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("audit: write signing key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("audit: write signing key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("audit: write signing key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("audit: create signing key: %w", err)
	}
	return nil
}

// LoadPublicKey reads the key checkpoints are verified with from a PEM file:
// either a "PUBLIC KEY" block (PKIX, as Signer.PublicKeyPEM writes) or the
// signing key file itself, from which the public key is derived.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("audit: public key %s: no PEM block found", path)
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("audit: public key %s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("audit: public key %s: %T is not an Ed25519 key", path, k)
		}
		return pub, nil
	case "PRIVATE KEY":
		s, err := loadKey(path)
		if err != nil {
			return nil, err
		}
		return s.Public(), nil
	}
	return nil, fmt.Errorf("audit: public key %s: PEM block is %q, want \"PUBLIC KEY\" or \"PRIVATE KEY\"", path, block.Type)
}
