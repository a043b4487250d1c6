package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-dev/warden/internal/secret"
)

// maxSecretLen bounds a value read from stdin.
const maxSecretLen = 1 << 20

// masterKeyFlag registers --master-key-file; without it the key comes from
// $WARDEN_MASTER_KEY.
func masterKeyFlag(fs *flag.FlagSet) *string {
	return fs.String("master-key-file", os.Getenv("WARDEN_MASTER_KEY_FILE"),
		"file holding the local secret store's master key, base64 of 32 bytes (env WARDEN_MASTER_KEY_FILE; default: $WARDEN_MASTER_KEY)")
}

// warden secrets set NAME | rotate NAME | revoke NAME | list [--json] | rekey --new-master-key-file F
func runSecrets(e *env, args []string) int {
	const usageLine = "secrets set NAME | rotate NAME | revoke NAME | list [--json] | rekey --new-master-key-file FILE  [--db PATH] [--master-key-file FILE]"
	if len(args) < 1 {
		e.errorf("usage: warden %s", usageLine)
		return exitBadArgs
	}
	verb := args[0]
	fs := newFlags("secrets "+verb, usageLine)
	db := dbFlag(fs)
	keyFile := masterKeyFlag(fs)
	newKeyFile := fs.String("new-master-key-file", "", "rekey: file holding the new master key (default: $WARDEN_NEW_MASTER_KEY)")
	asJSON := fs.Bool("json", false, "list: print JSON lines")
	pos, ok := parse(fs, args[1:], e.stderr)
	if !ok {
		return exitBadArgs
	}
	switch verb {
	case "set", "rotate", "revoke":
		if len(pos) != 1 {
			if len(pos) > 1 && verb != "revoke" {
				e.errorf("secrets %s takes the value on stdin, never on the command line: echo -n VALUE | warden secrets %s NAME", verb, verb)
			} else {
				e.errorf("name exactly one secret")
			}
			return exitBadArgs
		}
		if _, err := secret.ParseRef("local://" + pos[0]); err != nil {
			e.errorf("%v", err)
			return exitBadArgs
		}
	case "list", "rekey":
		if len(pos) != 0 {
			e.errorf("secrets %s takes no arguments", verb)
			return exitBadArgs
		}
	default:
		e.errorf("unknown secrets command %q; expected set, rotate, revoke, list or rekey", verb)
		return exitBadArgs
	}

	var key *secret.MasterKey
	if verb == "set" || verb == "rotate" || verb == "rekey" {
		k, err := secret.LoadMasterKey(*keyFile)
		if err != nil {
			e.errorf("%v", err)
			return exitBadArgs
		}
		if k == nil {
			e.errorf("%v", secret.ErrNoMasterKey)
			return exitBadArgs
		}
		key = k
	}
	var value secret.Value
	if verb == "set" || verb == "rotate" {
		v, err := readSecretValue(e.stdin)
		if err != nil {
			e.errorf("%v", err)
			return exitBadArgs
		}
		value = v
	}
	var newKey *secret.MasterKey
	if verb == "rekey" {
		var err error
		if *newKeyFile != "" {
			newKey, err = secret.LoadMasterKey(*newKeyFile)
		} else if s := os.Getenv("WARDEN_NEW_MASTER_KEY"); s != "" {
			newKey, err = secret.ParseMasterKey(s)
		} else {
			err = errors.New("rekey needs the new master key: --new-master-key-file FILE or $WARDEN_NEW_MASTER_KEY")
		}
		if err != nil {
			e.errorf("new master key: %v", err)
			return exitBadArgs
		}
		if newKey.ID() == key.ID() {
			e.errorf("the new master key is the current one (key id %s)", key.ID())
			return exitBadArgs
		}
	}

	st, ok := openStore(e, *db)
	if !ok {
		return exitFailed
	}
	defer st.Close()
	switch verb {
	case "set", "rotate":
		// One store, one master key: refuse to mix in values under another.
		list, err := st.Secrets(e.ctx)
		if err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		for _, s := range list {
			if s.RevokedAt == nil && s.KeyID != key.ID() {
				e.errorf("the store's secrets are under master key id %s, the key given has id %s: use the store's key (or rekey first)", s.KeyID, key.ID())
				return exitFailed
			}
		}
		seal := func(version int64) (*secret.Sealed, error) { return key.Seal(pos[0], version, value) }
		put := st.CreateSecret
		if verb == "rotate" {
			put = st.RotateSecret
		}
		sl, err := put(e.ctx, pos[0], seal)
		if err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		fmt.Fprintf(e.stdout, "local://%s version %d (key id %s)\n", sl.Name, sl.Version, sl.KeyID)
	case "revoke":
		if err := st.RevokeSecret(e.ctx, pos[0]); err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		fmt.Fprintf(e.stdout, "revoked local://%s\n", pos[0])
	case "list":
		list, err := st.Secrets(e.ctx)
		if err != nil {
			e.errorf("%v", err)
			return exitFailed
		}
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			for _, s := range list {
				_ = enc.Encode(secretInfo{Name: s.Name, Reference: "local://" + s.Name, Version: s.Version, KeyID: s.KeyID,
					CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, RevokedAt: s.RevokedAt})
			}
			return exitOK
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tVERSION\tKEY ID\tCREATED\tUPDATED\tREVOKED")
		for _, s := range list {
			revoked := "-"
			if s.RevokedAt != nil {
				revoked = s.RevokedAt.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", s.Name, s.Version, s.KeyID,
				s.CreatedAt.Format("2006-01-02 15:04"), s.UpdatedAt.Format("2006-01-02 15:04"), revoked)
		}
		tw.Flush()
	case "rekey":
		n, err := st.RekeySecrets(e.ctx, newKey.ID(), func(s *secret.Sealed) (*secret.Sealed, error) {
			return key.Reseal(s, newKey)
		})
		if err != nil {
			e.errorf("rekey (nothing changed): %v", err)
			return exitFailed
		}
		fmt.Fprintf(e.stdout, "re-encrypted %d secret(s): key id %s → %s; start warden with the new master key\n", n, key.ID(), newKey.ID())
	}
	return exitOK
}

type secretInfo struct {
	Name      string     `json:"name"`
	Reference string     `json:"reference"`
	Version   int64      `json:"version"`
	KeyID     string     `json:"key_id"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// readSecretValue reads a value from stdin: everything up to EOF, less one
// trailing newline (what `echo` and a terminal add).
func readSecretValue(r io.Reader) (secret.Value, error) {
	if r == nil {
		return secret.Value{}, errors.New("the value is read from stdin, and there is none")
	}
	b, err := io.ReadAll(io.LimitReader(r, maxSecretLen+1))
	if err != nil {
		return secret.Value{}, fmt.Errorf("reading the value from stdin: %w", err)
	}
	if len(b) > maxSecretLen {
		return secret.Value{}, fmt.Errorf("the value is longer than %d bytes", maxSecretLen)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return secret.Value{}, errors.New("the value on stdin is empty")
	}
	return secret.NewValue(s), nil
}
