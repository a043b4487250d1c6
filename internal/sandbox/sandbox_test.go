package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/sandbox/egress"
	"golang.org/x/sys/unix"
)

// need fails the test (never skips it) when the sandbox cannot run here.
func need(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		t.Fatalf("%v (run `make deps`, which installs bubblewrap)", err)
	}
}

func run(t *testing.T, spec Spec) *Result {
	t.Helper()
	need(t)
	res, err := Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("Run(%q): %v", spec.Argv, err)
	}
	return res
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// workDir makes a host directory the sandbox's uid may write.
func workDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sandbox-test-work-*") // t.TempDir's parent is 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if os.Geteuid() == 0 {
		if err := os.Chown(d, sandboxUID, sandboxUID); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestRunBasics(t *testing.T) {
	res := run(t, Spec{Argv: sh(`echo out; echo err >&2; pwd; exit 3`), Env: map[string]string{"X": "y"}})
	if res.ExitCode != 3 || string(res.Stdout) != "out\n/work\n" || string(res.Stderr) != "err\n" || res.Killed {
		t.Fatalf("got exit %d stdout %q stderr %q killed %v", res.ExitCode, res.Stdout, res.Stderr, res.Killed)
	}
	if res.Landlock != LandlockABI() {
		t.Errorf("landlock = %d, want the kernel's ABI %d", res.Landlock, LandlockABI())
	}
	res = run(t, Spec{Argv: []string{"no-such-command"}})
	if res.ExitCode != 127 || !strings.Contains(string(res.Stderr), "command not found") {
		t.Errorf("missing command: exit %d stderr %q", res.ExitCode, res.Stderr)
	}
	res = run(t, Spec{Argv: []string{"env"}, Env: map[string]string{"TOKEN": "abc"}})
	if !strings.Contains(string(res.Stdout), "TOKEN=abc\n") || strings.Contains(string(res.Stdout), "GOPATH") {
		t.Errorf("environment: %q", res.Stdout)
	}
}

// TestFilesystem: what is not bound is not there, and nothing outside
// /work, /tmp and /dev can be written.
func TestFilesystem(t *testing.T) {
	t.Run("all layers", testFilesystem)
	// The mounts alone, without Landlock, hold the same boundary.
	t.Run("without landlock", func(t *testing.T) {
		testWithoutLandlock = true
		defer func() { testWithoutLandlock = false }()
		testFilesystem(t)
	})
}

func testFilesystem(t *testing.T) {
	secretDir := t.TempDir()
	planted := filepath.Join(secretDir, "planted.txt")
	if err := os.WriteFile(planted, []byte("TOP-SECRET-PLANTED"), 0o644); err != nil {
		t.Fatal(err)
	}
	wd := workDir(t)
	res := run(t, Spec{WorkDir: wd, Argv: sh(`
cat ` + planted + ` 2>/dev/null && echo READ-PLANTED
cat /etc/shadow 2>/dev/null && echo READ-SHADOW
ls /root /home /var /opt 2>/dev/null && echo LISTED-HOST
for p in /usr/x /etc/x /x /.warden/x /proc/sys/kernel/hostname /bin/x /sys/x; do
  (echo pwned > $p) 2>/dev/null && echo WROTE $p
done
mkdir /newdir 2>/dev/null && echo MKDIR-ROOT
echo ok > /work/file && echo WORK-OK
echo ok > /tmp/file && echo TMP-OK
echo ok > /dev/null && echo DEVNULL-OK
`)})
	out := string(res.Stdout)
	for _, bad := range []string{"READ-PLANTED", "READ-SHADOW", "LISTED-HOST", "WROTE", "MKDIR-ROOT"} {
		if strings.Contains(out, bad) {
			t.Errorf("escape: %s\n%s", bad, out)
		}
	}
	for _, good := range []string{"WORK-OK", "TMP-OK", "DEVNULL-OK"} {
		if !strings.Contains(out, good) {
			t.Errorf("missing %s: %s %s", good, out, res.Stderr)
		}
	}
	if b, err := os.ReadFile(filepath.Join(wd, "file")); err != nil || string(b) != "ok\n" {
		t.Errorf("work dir file on the host: %q %v", b, err)
	}
}

func TestWorkDirSeedAndDiscard(t *testing.T) {
	seed := t.TempDir()
	os.WriteFile(filepath.Join(seed, "in.txt"), []byte("seeded\n"), 0o644)
	res := run(t, Spec{Seed: seed, Argv: sh(`cat in.txt; echo new > out.txt`)})
	if string(res.Stdout) != "seeded\n" || res.WorkDir != "" {
		t.Fatalf("seeded run: %q %q workdir %q", res.Stdout, res.Stderr, res.WorkDir)
	}
	if _, err := os.Stat(filepath.Join(seed, "out.txt")); err == nil {
		t.Error("the seed directory was written")
	}
	res = run(t, Spec{Seed: seed, KeepWorkDir: true, Argv: sh(`echo new > out.txt`)})
	if res.WorkDir == "" {
		t.Fatal("kept work dir not reported")
	}
	defer os.RemoveAll(res.WorkDir)
	if b, _ := os.ReadFile(filepath.Join(res.WorkDir, "out.txt")); string(b) != "new\n" {
		t.Errorf("kept work dir holds %q", b)
	}
}

// TestNoNetwork: a listener on the host's 127.0.0.1 cannot be reached.
func TestNoNetwork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	res := run(t, Spec{Argv: sh(fmt.Sprintf(`curl -sS --max-time 3 http://127.0.0.1:%d/ && echo REACHED; curl -sS --max-time 3 https://example.com/ && echo REACHED; cat /sys/class/net/*/address 2>/dev/null; ls /proc/net/dev >/dev/null; echo done`, port))})
	if strings.Contains(string(res.Stdout), "REACHED") {
		t.Fatalf("network escape: %s", res.Stdout)
	}
	select {
	case <-accepted:
		t.Fatal("the host listener accepted a connection from the sandbox")
	default:
	}
}

// TestSeccomp: every refused syscall fails with EPERM.
func TestSeccomp(t *testing.T) {
	calls := map[string]uintptr{
		"ptrace": unix.SYS_PTRACE, "mount": unix.SYS_MOUNT, "umount2": unix.SYS_UMOUNT2, "keyctl": unix.SYS_KEYCTL,
		"bpf": unix.SYS_BPF, "unshare": unix.SYS_UNSHARE, "setns": unix.SYS_SETNS, "kexec_load": unix.SYS_KEXEC_LOAD,
		"init_module": unix.SYS_INIT_MODULE, "perf_event_open": unix.SYS_PERF_EVENT_OPEN,
	}
	var py strings.Builder
	py.WriteString("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n")
	for name, nr := range calls {
		fmt.Fprintf(&py, "r = libc.syscall(%d, 0, 0, 0, 0, 0)\nprint(%q, r, ctypes.get_errno())\n", nr, name)
	}
	// clone with a namespace flag, as unshare(1) would try.
	fmt.Fprintf(&py, "r = libc.syscall(%d, %d, 0, 0, 0, 0)\nprint('clone_newuser', r, ctypes.get_errno())\n", unix.SYS_CLONE, unix.CLONE_NEWUSER)
	res := run(t, Spec{Argv: []string{"python3", "-c", py.String()}})
	lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	if len(lines) != len(calls)+1 {
		t.Fatalf("python printed %q (stderr %q)", res.Stdout, res.Stderr)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 || f[1] != "-1" || f[2] != strconv.Itoa(int(unix.EPERM)) {
			t.Errorf("%s: got %q, want -1 EPERM", f[0], l)
		}
	}
	res = run(t, Spec{Argv: sh(`unshare -U true && echo UNSHARED; grep '^Seccomp:' /proc/self/status; grep NoNewPrivs /proc/self/status`)})
	out := string(res.Stdout)
	if strings.Contains(out, "UNSHARED") || !strings.Contains(out, "Seccomp:\t2") || !strings.Contains(out, "NoNewPrivs:\t1") {
		t.Errorf("got %q", out)
	}
}

func TestProcessLimit(t *testing.T) {
	// Many children: forks beyond the limit fail.
	res := run(t, Spec{Limits: Limits{Processes: 16}, Argv: sh(`i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); echo $i; done`)})
	lines := strings.Fields(string(res.Stdout))
	n := 0
	if len(lines) > 0 {
		n, _ = strconv.Atoi(lines[len(lines)-1])
	}
	if n == 0 || n >= 16 || !strings.Contains(string(res.Stderr), "fork") || res.ExitCode == 0 {
		t.Fatalf("started %d children (stdout %q, stderr %q, exit %d), want fewer than 16 and a fork failure", n, res.Stdout, res.Stderr, res.ExitCode)
	}
	// A real fork bomb hits the limit and ends with the sandbox, killed
	// by the timeout; nothing of it survives.
	mark := fmt.Sprintf("bomb%d", time.Now().UnixNano())
	res = run(t, Spec{Limits: Limits{Processes: 32, Timeout: 2 * time.Second}, Argv: sh(mark + `() { ` + mark + ` | ` + mark + ` & }; ` + mark + `; sleep 60`)})
	if !strings.Contains(string(res.Stderr), "fork") || !res.Killed || res.KillReason != KilledTimeout {
		t.Fatalf("fork bomb: exit %d killed %v (%s) stderr %.200q; want a fork failure and the timeout", res.ExitCode, res.Killed, res.KillReason, res.Stderr)
	}
	if pids := hostProcesses(t, mark); len(pids) > 0 {
		t.Fatalf("fork bomb processes survive on the host: %v", pids)
	}
}

func TestMemoryHogKilled(t *testing.T) {
	hog := "x = []\nwhile True:\n    x.append(b'x' * (8 << 20))\n"
	res := run(t, Spec{Limits: Limits{Memory: 64 << 20, Timeout: 20 * time.Second}, Argv: []string{"python3", "-c", hog}})
	if !res.Killed || res.KillReason != KilledMemory {
		t.Fatalf("memory hog: exit %d killed %v reason %q stderr %q", res.ExitCode, res.Killed, res.KillReason, res.Stderr)
	}
	// The per-process address-space limit makes a big allocation fail.
	res = run(t, Spec{Limits: Limits{AddressSpace: 256 << 20}, Argv: []string{"python3", "-c", "b = bytearray(1 << 30)\nprint('ALLOCATED')"}})
	if res.ExitCode == 0 || strings.Contains(string(res.Stdout), "ALLOCATED") || !strings.Contains(string(res.Stderr), "MemoryError") {
		t.Fatalf("address space: exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
}

func TestCPUAndFileSizeLimits(t *testing.T) {
	res := run(t, Spec{Limits: Limits{CPU: time.Second, Timeout: 20 * time.Second}, Argv: sh(`while :; do :; done`)})
	if !res.Killed || res.KillReason != KilledCPU {
		t.Errorf("cpu: exit %d killed %v reason %q cpu %v", res.ExitCode, res.Killed, res.KillReason, res.CPUTime)
	}
	res = run(t, Spec{Limits: Limits{FileSize: 1 << 20}, Argv: sh(`head -c 3000000 /dev/zero > /work/big; echo AFTER`)})
	if strings.Contains(string(res.Stdout), "AFTER") && res.ExitCode == 0 {
		// The shell survives its child's SIGXFSZ; the file must be capped.
	}
	res = run(t, Spec{Limits: Limits{FileSize: 1 << 20}, Argv: []string{"dd", "if=/dev/zero", "of=/work/big", "bs=1M", "count=3"}})
	if !res.Killed || res.KillReason != KilledFileSize {
		t.Errorf("file size: exit %d killed %v reason %q stderr %q", res.ExitCode, res.Killed, res.KillReason, res.Stderr)
	}
}

// TestTimeoutKillsGrandchildren: the wall clock kills the whole tree,
// including a background grandchild.
func TestTimeoutKillsGrandchildren(t *testing.T) {
	mark := fmt.Sprintf("60.%d", time.Now().UnixNano()%1000000)
	start := time.Now()
	res := run(t, Spec{Limits: Limits{Timeout: 500 * time.Millisecond}, Argv: sh(`sleep ` + mark + ` & wait`)})
	if !res.Killed || res.KillReason != KilledTimeout {
		t.Fatalf("exit %d killed %v reason %q", res.ExitCode, res.Killed, res.KillReason)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("took %v", d)
	}
	if pids := hostProcesses(t, mark); len(pids) > 0 {
		t.Fatalf("grandchild still running on the host: pids %v", pids)
	}
}

// hostProcesses lists host pids whose command line contains s.
func hostProcesses(t *testing.T, s string) []int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, pid)
		}
	}
	return out
}

func TestCancelKills(t *testing.T) {
	need(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	res, err := Run(ctx, Spec{Argv: sh(`sleep 60`)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Killed || res.KillReason != KilledCancelled {
		t.Fatalf("killed %v reason %q", res.Killed, res.KillReason)
	}
}

func TestOutputCap(t *testing.T) {
	res := run(t, Spec{Limits: Limits{Output: 1000}, Argv: sh(`yes | head -c 5000000; yes e | head -c 3000 >&2`)})
	if !res.Truncated || len(res.Stdout) != 1000+len(TruncationMarker) || !bytes.HasSuffix(res.Stdout, []byte(TruncationMarker)) {
		t.Fatalf("stdout: %d bytes, truncated %v", len(res.Stdout), res.Truncated)
	}
	if len(res.Stderr) != 1000+len(TruncationMarker) {
		t.Fatalf("stderr: %d bytes", len(res.Stderr))
	}
	if res.ExitCode != 0 {
		t.Errorf("exit %d", res.ExitCode)
	}
}

// TestRedactBeforeCut: a secret straddling the cut is redacted whole, not
// left as a prefix.
func TestRedactBeforeCut(t *testing.T) {
	secret := "s3cr3t-VALUE-0123456789"
	redact := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(secret), []byte("[REDACTED]")) }
	res := run(t, Spec{Limits: Limits{Output: 100}, Redact: redact, Env: map[string]string{"S": secret},
		Argv: sh(`printf '%095d' 0; echo "$S"; echo "$S" >&2`)})
	if bytes.Contains(res.Stdout, []byte("s3cr")) || bytes.Contains(res.Stderr, []byte(secret)) {
		t.Fatalf("secret leaked: %q %q", res.Stdout, res.Stderr)
	}
}

func TestStart(t *testing.T) {
	need(t)
	p, err := Start(context.Background(), Spec{Argv: []string{"cat"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(p.Stdin, "ping\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(p.Stdout, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("read %q %v", buf, err)
	}
	p.Stdin.Close()
	res, err := p.Wait()
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("wait: %+v %v", res, err)
	}
	p.Stdout.Close()

	p, err = Start(context.Background(), Spec{Argv: []string{"sleep", "60"}})
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	res, err = p.Wait()
	if err != nil || !res.Killed || res.KillReason != KilledByCaller {
		t.Fatalf("kill: %+v %v", res, err)
	}
}

func TestRefusesWithoutBubblewrap(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := Run(context.Background(), Spec{Argv: []string{"true"}}); !errors.Is(err, ErrNoBubblewrap) {
		t.Fatalf("got %v, want ErrNoBubblewrap", err)
	}
	if _, err := Start(context.Background(), Spec{Argv: []string{"true"}}); !errors.Is(err, ErrNoBubblewrap) {
		t.Fatalf("got %v, want ErrNoBubblewrap", err)
	}
}

func TestSetupErrors(t *testing.T) {
	need(t)
	_, err := Run(context.Background(), Spec{Argv: []string{"true"}, Dir: "/does/not/exist"})
	var se *SetupError
	if !errors.As(err, &se) {
		t.Fatalf("bad dir: got %v, want *SetupError", err)
	}
	for _, b := range []string{"relative", "/", "/proc", "/work", "/does/not/exist"} {
		if _, err := Run(context.Background(), Spec{Argv: []string{"true"}, Binds: []string{b}}); err == nil {
			t.Errorf("bind %q accepted", b)
		}
	}
	if _, err := Run(context.Background(), Spec{}); err == nil {
		t.Error("empty argv accepted")
	}
}

// TestEgress: through the proxy, an allowlisted name reaches a local test
// server; other names, the metadata address and a name resolving to
// loopback are refused; and every attempt is reported.
func TestEgress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from upstream") }))
	defer srv.Close()
	srvAddr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	port := srvAddr.Port()
	resolver := testResolver{"allowed.test": srvAddr.Addr(), "other.test": srvAddr.Addr(), "evil.test": netip.MustParseAddr("127.0.0.1")}
	var audited []egress.Attempt
	opts := &egress.Options{
		Allow:    []string{fmt.Sprintf("allowed.test:%d", port), "*.example.org"},
		Resolver: resolver,
		// The one exception to the private-range policy: this test's
		// server, for the name this test allows.
		AllowAddr: func(a netip.Addr) bool { return a == srvAddr.Addr() || !egress.Blocked(a) },
		Audit:     func(a egress.Attempt) error { audited = append(audited, a); return nil },
	}
	curl := func(url string) string {
		return fmt.Sprintf(`curl -sS -p --max-time 5 %s; echo " rc=$?"`, url)
	}
	res := run(t, Spec{Egress: opts, Argv: sh(curl(fmt.Sprintf("http://allowed.test:%d/", port)) + ";" +
		curl(fmt.Sprintf("http://other.test:%d/", port)) + ";" +
		curl("http://169.254.169.254/latest/meta-data/") + ";" +
		curl(fmt.Sprintf("http://127.0.0.1:%d/", port)) + ";" +
		fmt.Sprintf(`curl -sS --noproxy '*' --max-time 3 http://127.0.0.1:%d/ && echo DIRECT`, port))})
	out := string(res.Stdout)
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "hello from upstream rc=0") {
		t.Fatalf("allowed host not reached: %q (stderr %q)", out, res.Stderr)
	}
	if strings.Count(out, "hello from upstream") != 1 || strings.Contains(out, "DIRECT") {
		t.Fatalf("a refused target was reached: %q", out)
	}
	want := []struct {
		host    string
		allowed bool
	}{{"allowed.test", true}, {"other.test", false}, {"169.254.169.254", false}, {"127.0.0.1", false}}
	if len(res.Egress) != len(want) || len(audited) != len(want) {
		t.Fatalf("attempts %+v, audited %+v", res.Egress, audited)
	}
	for i, w := range want {
		if a := res.Egress[i]; a.Host != w.host || a.Allowed != w.allowed || a.Method != "CONNECT" {
			t.Errorf("attempt %d = %+v, want host %s allowed %v", i, a, w.host, w.allowed)
		}
	}

	// The production policy, strict: an allowlisted name that resolves to
	// loopback is refused.
	strict := &egress.Options{Allow: []string{"evil.test:*"}, Resolver: resolver}
	res = run(t, Spec{Egress: strict, Argv: sh(curl(fmt.Sprintf("http://evil.test:%d/", port)))})
	if strings.Contains(string(res.Stdout), "hello") || len(res.Egress) != 1 || res.Egress[0].Allowed ||
		!strings.Contains(res.Egress[0].Reason, "resolves to 127.0.0.1") {
		t.Fatalf("evil.test: %q %+v", res.Stdout, res.Egress)
	}
}

type testResolver map[string]netip.Addr

func (r testResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestLandlock: the layer shows on its own: with the network ABI, the
// command may not bind TCP ports even inside its own namespace, which the
// namespaces alone allow.
func TestLandlock(t *testing.T) {
	need(t)
	if LandlockABI() < 4 {
		t.Fatalf("this kernel's Landlock ABI is %d; these machines have 7 (DESIGN.md)", LandlockABI())
	}
	bind := []string{"python3", "-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 8000)); print('BOUND')"}
	res := run(t, Spec{Argv: bind})
	if strings.Contains(string(res.Stdout), "BOUND") || !strings.Contains(string(res.Stderr), "PermissionError") {
		t.Fatalf("bind with landlock: %q %q", res.Stdout, res.Stderr)
	}
	testWithoutLandlock = true
	defer func() { testWithoutLandlock = false }()
	res = run(t, Spec{Argv: bind})
	if !strings.Contains(string(res.Stdout), "BOUND") {
		t.Fatalf("bind without landlock: %q %q", res.Stdout, res.Stderr)
	}
}
