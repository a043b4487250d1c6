package cli

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/audit"
	"github.com/warden-dev/warden/internal/call"
	"github.com/warden-dev/warden/internal/server"
	"github.com/warden-dev/warden/internal/store"
	"github.com/warden-dev/warden/internal/store/postgres"
)

// warden audit tail|search|verify|export
func runAudit(e *env, args []string) int {
	if len(args) < 1 {
		e.errorf("usage: warden audit tail|search|verify|export [flags]")
		return exitBadArgs
	}
	verb := args[0]
	fs := newFlags("audit "+verb, "audit tail [-n N] [--follow] | search [--agent A] [--decision D] [--since T] [--until T] [--json] | verify | export --format jsonl")
	db := dbFlag(fs)
	key := auditKeyFlag(fs)
	n := fs.Int("n", 20, "tail: how many records")
	follow := fs.Bool("follow", false, "tail: keep printing new records")
	agent := fs.String("agent", "", "search: only this agent")
	tenant := fs.String("tenant", "", "search: only this tenant")
	decision := fs.String("decision", "", "search: only this decision")
	since := fs.String("since", "", "search: from this time (RFC 3339, or a duration ago such as 24h or 7d)")
	until := fs.String("until", "", "search: before this time (RFC 3339, or a duration ago)")
	limit := fs.Int("limit", 1000, "search: at most this many records")
	asJSON := fs.Bool("json", false, "tail, search: print records as JSON lines")
	format := fs.String("format", "jsonl", "export: the format (jsonl)")
	pos, ok := parse(fs, args[1:], e.stderr)
	if !ok {
		return exitBadArgs
	}
	if len(pos) > 0 {
		e.errorf("unexpected argument %q", pos[0])
		return exitBadArgs
	}
	switch verb {
	case "tail", "search", "verify", "export":
	default:
		e.errorf("unknown audit command %q; expected tail, search, verify or export", verb)
		return exitBadArgs
	}
	if verb == "export" && *format != "jsonl" {
		e.errorf("--format must be jsonl")
		return exitBadArgs
	}
	f := store.AuditFilter{Agent: *agent, Tenant: *tenant, Decision: *decision, Limit: *limit}
	if f.Decision != "" && !call.Decision(f.Decision).Valid() {
		e.errorf("--decision must be ALLOW, ALLOW_WITH_CONSTRAINTS, REQUIRE_APPROVAL or DENY")
		return exitBadArgs
	}
	now := time.Now()
	for _, t := range []struct {
		flag, v string
		dst     *time.Time
	}{{"--since", *since, &f.Since}, {"--until", *until, &f.Until}} {
		if t.v == "" {
			continue
		}
		v, err := server.ParseTime(t.v, now)
		if err != nil {
			e.errorf("%s %v", t.flag, err)
			return exitBadArgs
		}
		*t.dst = v
	}
	if _, err := os.Stat(strings.TrimPrefix(*db, "sqlite://")); err != nil && !postgres.IsURL(*db) {
		e.errorf("no store at %s (set --db or WARDEN_DB to the file warden serve uses)", *db)
		return exitFailed
	}
	st, ok := openStore(e, *db)
	if !ok {
		return exitFailed
	}
	defer st.Close()

	switch verb {
	case "verify":
		return auditVerify(e, st, *db, *key)
	case "export":
		enc := json.NewEncoder(e.stdout)
		if err := st.AuditAll(e.ctx, func(r *audit.Record) error { return enc.Encode(r) }); err != nil {
			e.errorf("export: %v", err)
			return exitFailed
		}
		return exitOK
	case "search":
		recs, err := st.AuditRecords(e.ctx, f)
		if err != nil {
			e.errorf("search: %v", err)
			return exitFailed
		}
		printRecords(e.stdout, recs, *asJSON)
		return exitOK
	}
	// tail
	recs, err := st.AuditRecords(e.ctx, store.AuditFilter{Limit: *n, Desc: true})
	if err != nil {
		e.errorf("tail: %v", err)
		return exitFailed
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	printRecords(e.stdout, recs, *asJSON)
	if !*follow {
		return exitOK
	}
	var last int64
	if len(recs) > 0 {
		last = recs[len(recs)-1].Seq
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return exitOK
		case <-t.C:
		}
		recs, err := st.AuditRecords(e.ctx, store.AuditFilter{AfterSeq: last, Limit: 1000})
		if err != nil {
			e.errorf("tail: %v", err)
			return exitFailed
		}
		printRecords(e.stdout, recs, *asJSON)
		if len(recs) > 0 {
			last = recs[len(recs)-1].Seq
		}
	}
}

func auditVerify(e *env, st store.Store, db, keyPath string) int {
	if keyPath == "" {
		keyPath = app.AuditKeyPath(db)
	}
	var pub ed25519.PublicKey
	if _, err := os.Stat(keyPath); err == nil {
		if pub, err = audit.LoadPublicKey(keyPath); err != nil {
			e.errorf("audit key %s: %v", keyPath, err)
			return exitFailed
		}
	}
	cps, err := st.Checkpoints(e.ctx)
	if err != nil {
		e.errorf("verify: %v", err)
		return exitFailed
	}
	if pub == nil && len(cps) > 0 {
		e.errorf("the trail has %d signed checkpoints but there is no key at %s to check them (set --audit-key)", len(cps), keyPath)
		return exitFailed
	}
	res, err := st.VerifyAudit(e.ctx, pub)
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		fmt.Fprintf(e.stdout, "FAIL: seq %d: %s\n", ve.Seq, ve.Problem)
		return exitFailed
	}
	if err != nil {
		e.errorf("verify: %v", err)
		return exitFailed
	}
	fmt.Fprintf(e.stdout, "ok: %d records, chain intact", res.Records)
	if res.Checkpoints > 0 {
		fmt.Fprintf(e.stdout, ", %d signed checkpoints valid", res.Checkpoints)
	}
	fmt.Fprintln(e.stdout)
	return exitOK
}

func printRecords(w io.Writer, recs []*audit.Record, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, r := range recs {
			_ = enc.Encode(r)
		}
		return
	}
	for _, r := range recs {
		outcome := r.Outcome
		if outcome == "" {
			outcome = "-"
		}
		fmt.Fprintf(w, "%6d  %s  %-14s %s/%s  %s.%s  %s  %s  %s\n", r.Seq, r.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
			r.Kind, r.Tenant, r.Agent, r.Connector, r.Action, r.Decision, outcome, r.Reason)
	}
}
