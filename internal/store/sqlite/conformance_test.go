package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		NewDB: func(t *testing.T) string { return filepath.Join(t.TempDir(), "w.db") },
		Open: func(t *testing.T, db string, o storetest.Options) store.Store {
			t.Helper()
			s, err := Open(context.Background(), db, nil, Options{Signer: o.Signer, CheckpointEvery: o.CheckpointEvery})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
}
