package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/warden-dev/warden/internal/config"
	"github.com/warden-dev/warden/internal/secret"
	"github.com/warden-dev/warden/internal/secret/vault"
)

// newSecrets builds the resolver every executor takes its credentials
// from: env://, file://, vault:// (Vault / OpenBao KV v2, configured from
// VAULT_* variables) and local:// (the store's encrypted secrets, under the
// master key from masterKeyFile or $WARDEN_MASTER_KEY). The returned Local
// has no store yet: Run sets it once the store is open, before serving.
func newSecrets(masterKeyFile string, redactor *secret.Redactor, cfg *config.Config, log *slog.Logger) (*secret.Resolver, *secret.Local, error) {
	key, err := secret.LoadMasterKey(masterKeyFile)
	if err != nil {
		return nil, nil, err
	}
	local := &secret.Local{Key: key}
	// AppRole's role_id and secret_id are references too, resolved
	// without caching through the non-vault providers.
	plain := schemes{"env": secret.Env{}, "file": secret.File{}, "local": local}
	vcfg := vault.FromEnv()
	vp, err := vault.New(vcfg, plain)
	if err != nil {
		return nil, nil, fmt.Errorf("vault: %w", err)
	}
	schemesUsed := map[string]bool{}
	for _, c := range cfg.Connectors {
		for _, ref := range c.Credentials {
			s, _, _ := strings.Cut(ref, "://")
			schemesUsed[s] = true
		}
	}
	if schemesUsed["local"] && key == nil {
		log.Warn("the config references local:// secrets but no master key is set (WARDEN_MASTER_KEY or --master-key-file); calls that need them will fail")
	}
	if schemesUsed["vault"] && vcfg.Addr == "" {
		log.Warn("the config references vault:// secrets but VAULT_ADDR is not set; calls that need them will fail")
	}
	if key != nil {
		log.Info("local secret store master key loaded", "key_id", key.ID())
	}
	r := secret.NewResolver(secret.ResolverOptions{
		Providers: map[string]secret.Provider{"env": secret.Env{}, "file": secret.File{}, "local": local, "vault": vp},
		Redactor:  redactor,
	})
	return r, local, nil
}

// schemes resolves references by scheme, without caching.
type schemes map[string]secret.Provider

func (s schemes) Resolve(ctx context.Context, r secret.Ref) (secret.Value, error) {
	p, ok := s[r.Scheme]
	if !ok {
		return secret.Value{}, &secret.Error{Ref: r.String(), Err: secret.ErrUnsupported}
	}
	return p.Resolve(ctx, r)
}
