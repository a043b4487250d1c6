// Package identity makes and checks bearer tokens. A token is shown once
// when created; only its SHA-256 is stored, so a copy of the database does
// not hand out working tokens.
package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// Prefix marks warden tokens so that secret scanners and the redactor can
// recognise them.
const Prefix = "wdn_"

// NewToken returns a fresh token (256 random bits) and its hash.
func NewToken() (token, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	token = Prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, Hash(token)
}

// Hash is the stored form of a token.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ErrMalformed is returned for a string that cannot be a warden token.
var ErrMalformed = errors.New("malformed token")

// Check rejects strings that cannot be tokens before any lookup.
func Check(token string) error {
	rest, ok := strings.CutPrefix(token, Prefix)
	if !ok || len(rest) != 43 {
		return ErrMalformed
	}
	if _, err := base64.RawURLEncoding.DecodeString(rest); err != nil {
		return ErrMalformed
	}
	return nil
}
