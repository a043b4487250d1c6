package app_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/app"
	"github.com/warden-dev/warden/internal/app/apptest"
	"github.com/warden-dev/warden/internal/cli"
	"github.com/warden-dev/warden/internal/store/sqlite"
)

var updateDiff = flag.Bool("update", false, "rewrite testdata/versions-diff.golden")

// noPurge is the rule of the test config that denies purge; the config
// without it allows purge (the agent's permission is on).
const noPurge = `  - name: no-purge
    match: {connector: up, action: purge}
    decision: DENY
    reason: purging is never allowed
`

// purgeConfigs returns the test config (purge denied), the same without the
// rule (purge allowed) and a broken one (an unknown key).
func purgeConfigs(t *testing.T, up *upstream) (deny, allow, broken string) {
	t.Helper()
	deny = fmt.Sprintf(config, up.URL)
	if !strings.Contains(deny, noPurge) {
		t.Fatal("the test config lost its no-purge rule")
	}
	allow = strings.Replace(deny, noPurge, "", 1)
	broken = strings.Replace(allow, "owner: test@example.com", "owner: test@example.com\nfavourite_colour: red", 1)
	return deny, allow, broken
}

func writeConfigDir(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	writeConfigFile(t, dir, content)
	return dir
}

func writeConfigFile(t *testing.T, dir, content string) {
	t.Helper()
	// Write beside, then rename: a poll never reads half a file.
	tmp := filepath.Join(dir, ".warden.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "warden.yaml")); err != nil {
		t.Fatal(err)
	}
}

func wardenCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

var liveLine = regexp.MustCompile(`(?m)^live: ([0-9a-f]{64})$`)

func applyConfig(t *testing.T, dir, db, author, msg string) string {
	t.Helper()
	code, out, errOut := wardenCLI("apply", "--config", dir, "--db", db, "--author", author, "--message", msg)
	m := liveLine.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("apply: %d %q %q", code, out, errOut)
	}
	return m[1]
}

// waitDecision calls purge until it is decided as want, for up to within.
func waitDecision(t *testing.T, url, token, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for i := 0; ; i++ {
		r := mustCall(t, url, token, "purge", map[string]any{"tag": fmt.Sprintf("wait-%d", i)})
		if r.Decision == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("purge still decided %s (%d %s) %v after the change; want %s", r.Decision, r.HTTP, r.raw, within, want)
		}
		time.Sleep(20 * time.Millisecond) // polling: the swap sends no event to the client
	}
}

// TestConfigApplyUnderLoad: `warden apply` against a running server's store
// swaps its config while calls run: none fails, later calls are decided by
// the new version, every record names the version that decided it. A
// broken apply is refused and changes nothing; rollback brings the old
// decision back within a second; diff shows what changed.
func TestConfigApplyUnderLoad(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	_, allow, broken := purgeConfigs(t, up)
	dir1, db := setup(t, up)
	dir2, dir3 := writeConfigDir(t, allow), writeConfigDir(t, broken)

	v1 := applyConfig(t, dir1, db, "alice", "purge denied")
	s := runInProcess(t, t.TempDir(), db) // an empty --config: the store's live version wins
	st := openStore(t, db)
	tok := agentToken(t, st)
	if r := mustCall(t, s.URL, tok, "purge", map[string]any{"tag": "first"}); r.HTTP != http.StatusForbidden {
		t.Fatalf("purge under v1: %d %s", r.HTTP, r.raw)
	}

	type result struct {
		start    time.Time
		http     int
		decision string
		err      error
	}
	const workers = 4
	results := make([][]result, workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 10 * time.Second}
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				r, err := postCall(context.Background(), hc, s.URL, tok, "purge", map[string]any{"tag": fmt.Sprintf("g%d-%d", g, i)})
				results[g] = append(results[g], result{start, r.HTTP, r.Decision, err})
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	v2 := applyConfig(t, dir2, db, "bob", "allow purge")
	applied := time.Now()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()

	var denied, allowed, late int
	for g, rs := range results {
		sawAllow := false
		for _, r := range rs {
			switch {
			case r.err != nil:
				t.Fatalf("worker %d: a call failed during apply: %v", g, r.err)
			case r.http == http.StatusForbidden && r.decision == "DENY":
				denied++
				if sawAllow {
					t.Errorf("worker %d: DENY after ALLOW: the old version came back", g)
				}
			case r.http == http.StatusOK && r.decision == "ALLOW":
				allowed++
				sawAllow = true
			default:
				t.Fatalf("worker %d: call answered %d %s during apply", g, r.http, r.decision)
			}
			if r.start.After(applied.Add(time.Second)) {
				late++
				if r.decision != "ALLOW" {
					t.Errorf("worker %d: a call started %v after apply was decided %s", g, r.start.Sub(applied), r.decision)
				}
			}
		}
	}
	if denied == 0 || allowed == 0 || late == 0 {
		t.Fatalf("load: %d denied, %d allowed, %d late calls; want some of each", denied, allowed, late)
	}

	recs, err := st.AuditRecords(context.Background(), sqlite.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var applies int
	for _, r := range recs {
		switch {
		case r.Kind == "config_apply":
			applies++
			if r.ConfigVersion != v1 && r.ConfigVersion != v2 {
				t.Errorf("config_apply record names %s", r.ConfigVersion)
			}
		case r.Action == "purge" && r.Decision == "DENY" && r.ConfigVersion != v1:
			t.Errorf("record %d: DENY decided by %s, want %s", r.Seq, r.ConfigVersion, v1)
		case r.Action == "purge" && r.Decision == "ALLOW" && r.ConfigVersion != v2:
			t.Errorf("record %d: ALLOW decided by %s, want %s", r.Seq, r.ConfigVersion, v2)
		}
	}
	if applies != 2 {
		t.Errorf("%d config_apply records, want 2", applies)
	}

	// A broken config is refused with validate's errors; nothing changes.
	code, out, errOut := wardenCLI("apply", "--config", dir3, "--db", db)
	if code != 1 || !strings.Contains(errOut, "warden.yaml:5:1") || !strings.Contains(errOut, "favourite_colour") {
		t.Fatalf("broken apply: %d %q %q; want exit 1 with file:line:col", code, out, errOut)
	}
	if vs, err := st.ConfigVersions(context.Background()); err != nil || len(vs) != 2 || !vs[0].Live || vs[0].Version != v2 {
		t.Fatalf("versions after a broken apply: %+v %v", vs, err)
	}
	time.Sleep(600 * time.Millisecond) // a poll has passed
	if r := mustCall(t, s.URL, tok, "purge", map[string]any{"tag": "after-broken"}); r.Decision != "ALLOW" {
		t.Fatalf("after a broken apply: %d %s, want v2 still serving", r.HTTP, r.raw)
	}

	// Rollback: the previous decision is back within a second.
	code, out, errOut = wardenCLI("rollback", "--db", db, "--author", "carol")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("from %s to %s by carol", v2[:12], v1[:12])) {
		t.Fatalf("rollback: %d %q %q", code, out, errOut)
	}
	waitDecision(t, s.URL, tok, "DENY", time.Second)
	if code, out, _ := wardenCLI("versions", "--db", db); code != 0 || !strings.Contains(out, "* "+v1[:12]) {
		t.Fatalf("versions after rollback: %d %q", code, out)
	}

	// diff: the per-document diff (the header's hashes and times vary).
	code, out, errOut = wardenCLI("diff", v1[:8], v2[:10], "--db", db)
	if code != 0 {
		t.Fatalf("diff: %d %q", code, errOut)
	}
	lines := strings.SplitN(out, "\n", 3)
	if !strings.HasPrefix(lines[0], "--- "+v1[:12]) || !strings.HasPrefix(lines[1], "+++ "+v2[:12]) {
		t.Fatalf("diff header: %q", out)
	}
	checkGolden(t, "testdata/versions-diff.golden", lines[2])

	if code, out, errOut := verify(t, db); code != 0 {
		t.Fatalf("audit verify: %d %s %s", code, out, errOut)
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *updateDiff {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestConfigReloadTrigger: in file mode the reload trigger (what SIGHUP
// sends) re-reads the files; a broken file is refused and the running
// version stays.
func TestConfigReloadTrigger(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	_, allow, broken := purgeConfigs(t, up)
	dir, db := setup(t, up)
	reload := make(chan struct{})
	url := apptest.Start(t, app.Options{ConfigDir: dir, DB: db, ConfigSource: app.SourceFile, Reload: reload, ConfigPoll: -1}).URL
	tok := agentToken(t, openStore(t, db))
	waitDecision(t, url, tok, "DENY", 0)

	writeConfigFile(t, dir, allow)
	reload <- struct{}{}
	reload <- struct{}{} // received once the first reload is done
	waitDecision(t, url, tok, "ALLOW", 0)

	writeConfigFile(t, dir, broken)
	reload <- struct{}{}
	reload <- struct{}{}
	waitDecision(t, url, tok, "ALLOW", 0)
}

// TestConfigReloadOnFileChange: in file mode a changed file is picked up
// within a couple of seconds without any signal; a broken one is refused.
func TestConfigReloadOnFileChange(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	deny, allow, broken := purgeConfigs(t, up)
	dir, db := setup(t, up)
	url := apptest.Start(t, app.Options{ConfigDir: dir, DB: db, ConfigSource: app.SourceFile}).URL
	tok := agentToken(t, openStore(t, db))
	waitDecision(t, url, tok, "DENY", 0)

	writeConfigFile(t, dir, allow)
	waitDecision(t, url, tok, "ALLOW", 3*time.Second)
	writeConfigFile(t, dir, broken)
	time.Sleep(2500 * time.Millisecond) // two polls
	waitDecision(t, url, tok, "ALLOW", 0)
	writeConfigFile(t, dir, deny)
	waitDecision(t, url, tok, "DENY", 3*time.Second)
}

// TestConfigReloadOnSIGHUP: a real `warden serve --config-source file`
// process reloads on SIGHUP instead of dying of it.
func TestConfigReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	_, allow, _ := purgeConfigs(t, up)
	dir, db := setup(t, up)
	p := &proc{log: &lineLog{ready: make(chan string, 1)}, exited: make(chan struct{})}
	p.cmd = wardenCmd("serve", "--config", dir, "--db", db, "--addr", "127.0.0.1:0", "--log-format", "json", "--config-source", "file")
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	select {
	case addr := <-p.log.ready:
		p.url = "http://" + addr
	case <-p.exited:
		t.Fatalf("warden serve exited before serving (%v):\n%s", p.err, p.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("warden serve did not start within 20s:\n%s", p.log)
	}
	tok := agentToken(t, openStore(t, db))
	waitDecision(t, p.url, tok, "DENY", 0)

	writeConfigFile(t, dir, allow)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitDecision(t, p.url, tok, "ALLOW", 2*time.Second)
	select {
	case <-p.exited:
		t.Fatalf("warden serve exited on SIGHUP:\n%s", p.log)
	default:
	}
	if !strings.Contains(p.log.String(), "reloading the config") {
		t.Errorf("no reload logged after SIGHUP:\n%s", p.log)
	}
}
