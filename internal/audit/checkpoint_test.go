package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestSigner(t testing.TB) *Signer {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "audit.key")
	s1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %#o, want 0600", got)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("key file is not a PEM PRIVATE KEY:\n%s", data)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("key directory holds %d entries, want only the key (temporary files left behind?)", len(entries))
	}

	s2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if s1.KeyID() != s2.KeyID() {
		t.Errorf("reloaded key id %s, want %s", s2.KeyID(), s1.KeyID())
	}
	if len(s1.KeyID()) != 16 {
		t.Errorf("key id %q has %d characters, want 16", s1.KeyID(), len(s1.KeyID()))
	}

	cp := s1.Sign(7, GenesisHash, time.Now())
	if err := VerifyCheckpoint(s2.Public(), cp); err != nil {
		t.Errorf("checkpoint from the created key does not verify with the reloaded one: %v", err)
	}
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.key")
	const n = 8
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := LoadOrCreateKey(path)
			errs[i] = err
			if err == nil {
				ids[i] = s.KeyID()
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadOrCreateKey #%d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("LoadOrCreateKey #%d got key %s, #0 got %s", i, ids[i], ids[0])
		}
	}
}

func TestLoadOrCreateKeyRefuses(t *testing.T) {
	_, rsaLike, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(rsaLike)
	if err != nil {
		t.Fatal(err)
	}
	good := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		dir     bool
		want    string
	}{
		{"group readable", good, 0o640, false, "too open"},
		{"world readable", good, 0o644, false, "too open"},
		{"empty", nil, 0o600, false, "no PEM block"},
		{"garbage", []byte("hello"), 0o600, false, "no PEM block"},
		{"wrong block type", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600, false, `"PUBLIC KEY"`},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600, false, "signing key"},
		{"trailing data", append(append([]byte{}, good...), "more"...), 0o600, false, "after the PEM block"},
		{"directory", nil, 0o700, true, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.key")
			if tt.dir {
				if err := os.Mkdir(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.WriteFile(path, tt.content, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.ReadFile(path)
			_, err := LoadOrCreateKey(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Error("a refused key file was modified")
			}
		})
	}
}

func TestLoadPublicKey(t *testing.T) {
	dir := t.TempDir()
	s, err := LoadOrCreateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := s.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "audit.pub"), pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"audit.pub", "audit.key"} {
		pub, err := LoadPublicKey(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if KeyID(pub) != s.KeyID() {
			t.Errorf("%s: key id %s, want %s", name, KeyID(pub), s.KeyID())
		}
	}
}

func TestVerifyCheckpoint(t *testing.T) {
	s := newTestSigner(t)
	other := newTestSigner(t)
	when := time.Date(2026, 11, 3, 4, 5, 6, 7, time.UTC)
	hash := strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		cp     func() Checkpoint
		pub    ed25519.PublicKey
		wantOK bool
	}{
		{"valid", func() Checkpoint { return s.Sign(1000, hash, when) }, s.Public(), true},
		{"other time zone same instant", func() Checkpoint {
			cp := s.Sign(1000, hash, when)
			cp.Time = cp.Time.In(time.FixedZone("X", 3600))
			return cp
		}, s.Public(), true},
		{"seq changed", func() Checkpoint { cp := s.Sign(1000, hash, when); cp.Seq++; return cp }, s.Public(), false},
		{"hash changed", func() Checkpoint { cp := s.Sign(1000, hash, when); cp.Hash = GenesisHash; return cp }, s.Public(), false},
		{"time changed", func() Checkpoint { cp := s.Sign(1000, hash, when); cp.Time = cp.Time.Add(1); return cp }, s.Public(), false},
		{"signature flipped", func() Checkpoint { cp := s.Sign(1000, hash, when); cp.Signature[3] ^= 1; return cp }, s.Public(), false},
		{"signature missing", func() Checkpoint { cp := s.Sign(1000, hash, when); cp.Signature = nil; return cp }, s.Public(), false},
		{"other key", func() Checkpoint { return other.Sign(1000, hash, when) }, s.Public(), false},
		{"other key claiming our id", func() Checkpoint {
			cp := other.Sign(1000, hash, when)
			cp.KeyID = s.KeyID()
			return cp
		}, s.Public(), false},
		{"short public key", func() Checkpoint { return s.Sign(1000, hash, when) }, s.Public()[:10], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyCheckpoint(tt.pub, tt.cp())
			if got := err == nil; got != tt.wantOK {
				t.Errorf("VerifyCheckpoint ok = %v (err %v), want %v", got, err, tt.wantOK)
			}
		})
	}
}

func TestCheckpointMessage(t *testing.T) {
	got := string(CheckpointMessage(1000, "ab", time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("X", 3600))))
	want := "warden-audit-checkpoint-v1\n1000\nab\n2026-01-02T02:04:05.0000006Z"
	if got != want {
		t.Errorf("CheckpointMessage = %q, want %q", got, want)
	}
}
