package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/policy"
)

// FuzzParse: no input makes the loader panic; every failure is a positioned
// config.Errors; every success yields a versioned config the engine accepts.
func FuzzParse(f *testing.F) {
	for _, glob := range []string{"../../examples/*/*.yaml", "testdata/broken/*/*.yaml", "../policy/testdata/*/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, name := range files {
			if data, err := os.ReadFile(name); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tm := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("slow input %q", data)) })
		defer tm.Stop()
		cfg, err := config.Parse([]config.File{{Name: "fuzz.yaml", Data: data}})
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is %T, want config.Errors: %v", err, err)
			}
			return
		}
		if len(cfg.Version) != 64 {
			t.Fatalf("version %q", cfg.Version)
		}
		eng := policy.New(cfg)
		for _, a := range cfg.Agents {
			for cn, actions := range a.Permissions {
				for an := range actions {
					v := eng.Decide(&call.Call{Tenant: a.Tenant, Agent: a.Name, Connector: cn, Action: an, Args: map[string]any{"x": int64(1)}})
					if !v.Decision.Valid() || v.Reason == "" {
						t.Fatalf("bad verdict %+v", v)
					}
				}
			}
		}
	})
}
