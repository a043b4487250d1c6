//go:build linux

package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/warden-dev/warden/internal/sandbox/egress"
	"github.com/warden-dev/warden/internal/sandbox/shim"
	"golang.org/x/sys/unix"
)

// procOneProbe tries, from inside the sandbox, every way the review found
// or suggested into the sandbox's pid 1 (the supervising shim) and into the
// command's parent: /proc/PID/mem for writing and reading, syscall,
// environ, maps, the fd directory, process_vm_readv/writev, pidfd_getfd,
// kcmp and process_madvise. Each line is "name result".
const procOneProbe = `
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print('pid', os.getpid(), 'ppid', os.getppid())
for pid in sorted({1, os.getppid()}):
    for name, mode in (('mem', 'r+b'), ('mem', 'rb'), ('syscall', 'r'), ('environ', 'rb'), ('maps', 'r')):
        try:
            with open('/proc/%d/%s' % (pid, name), mode) as f:
                f.read(1)
            print('OPENED /proc/%d/%s %s' % (pid, name, mode))
        except OSError as e:
            print('denied /proc/%d/%s %s %s' % (pid, name, mode, e.errno))
    try:
        os.listdir('/proc/%d/fd' % pid)
        print('OPENED /proc/%d/fd' % pid)
    except OSError as e:
        print('denied /proc/%d/fd %s' % (pid, e.errno))
for name, nr, args in (('process_vm_readv', NR_READV, (1, 0, 0, 0, 0, 0)), ('process_vm_writev', NR_WRITEV, (1, 0, 0, 0, 0, 0)),
                       ('pidfd_getfd', NR_GETFD, (0, 0, 0)), ('kcmp', NR_KCMP, (1, os.getpid(), 0, 0, 0)),
                       ('process_madvise', NR_MADVISE, (0, 0, 0, 0, 0))):
    r = libc.syscall(nr, *args)
    print('syscall', name, r, ctypes.get_errno())
print('RAN-NORMALLY')
`

func probeProcOne(t *testing.T, spec Spec) {
	t.Helper()
	py := strings.NewReplacer("NR_READV", fmt.Sprint(unix.SYS_PROCESS_VM_READV), "NR_WRITEV", fmt.Sprint(unix.SYS_PROCESS_VM_WRITEV),
		"NR_GETFD", fmt.Sprint(unix.SYS_PIDFD_GETFD), "NR_KCMP", fmt.Sprint(unix.SYS_KCMP), "NR_MADVISE", fmt.Sprint(unix.SYS_PROCESS_MADVISE)).Replace(procOneProbe)
	spec.Argv = []string{"python3", "-c", py}
	res := run(t, spec)
	out := string(res.Stdout)
	if res.ExitCode != 0 || !strings.Contains(out, "RAN-NORMALLY") {
		t.Fatalf("probe did not run normally: exit %d stdout %q stderr %q", res.ExitCode, out, res.Stderr)
	}
	if strings.Contains(out, "pid 1 ") {
		t.Errorf("the command is the sandbox's pid 1: %q", out)
	}
	if strings.Contains(out, "OPENED") {
		t.Errorf("the command reached another process of the sandbox:\n%s", out)
	}
	if !strings.Contains(out, "denied /proc/1/mem r+b") {
		t.Errorf("no /proc/1/mem probe: %q", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "syscall" && (f[2] != "-1" || f[3] != fmt.Sprint(int(unix.EPERM))) {
			t.Errorf("%s: got %q, want -1 EPERM", f[1], l)
		}
	}
	if res.Landlock != 0 {
		t.Errorf("Landlock reported as %d though it was off", res.Landlock)
	}
}

// TestProcOneUnreachable: with Landlock off (a kernel without it), the
// command can neither write nor read the memory of the sandbox's pid 1 or
// its own parent — the supervising shim: bubblewrap runs --as-pid-1, the
// shim is not dumpable, and the seccomp filter refuses the cross-process
// syscalls. With and without egress (where the supervisor also forwards).
func TestProcOneUnreachable(t *testing.T) {
	testWithoutLandlock = true
	defer func() { testWithoutLandlock = false }()
	t.Run("plain", func(t *testing.T) { probeProcOne(t, Spec{}) })
	t.Run("egress", func(t *testing.T) { probeProcOne(t, Spec{Egress: &egress.Options{Allow: []string{"example.org"}}}) })
	// And the supervisor itself runs under the seccomp filter.
	res := run(t, Spec{Argv: sh(`grep -E '^(Seccomp|NoNewPrivs):' /proc/1/status; echo $$`)})
	if out := string(res.Stdout); !strings.Contains(out, "Seccomp:\t2") || !strings.Contains(out, "NoNewPrivs:\t1") || strings.HasSuffix(out, "\n1\n") {
		t.Errorf("pid 1: %q %q", out, res.Stderr)
	}
}

// TestReapsOrphans: the shim, as pid 1, reaps the command's orphans, and
// the command's exit still ends whatever it left running.
func TestReapsOrphans(t *testing.T) {
	mark := fmt.Sprintf("orphan-%d", time.Now().UnixNano())
	res := run(t, Spec{Argv: sh(`for i in 1 2 3 4 5; do (true &) ; done; sleep 0.3; grep -l '^State:.*Z' /proc/[0-9]*/status; (exec -a ` + mark + ` sleep 60 &) ; echo done`)})
	if string(res.Stdout) != "done\n" {
		t.Fatalf("zombies left unreaped: %q %q", res.Stdout, res.Stderr)
	}
	time.Sleep(200 * time.Millisecond)
	if pids := hostProcesses(t, mark); len(pids) > 0 {
		t.Fatalf("an orphan outlived the command: %v", pids)
	}
}

// TestShimCannotBePlanted: the shim is bound from an fd warden holds, so
// neither a file planted where the old fixed-name directory was, nor one
// planted after the private copy's directory vanished, ever runs.
func TestShimCannotBePlanted(t *testing.T) {
	need(t)
	marker := filepath.Join(t.TempDir(), "planted-ran")
	planted := "#!/bin/sh\ntouch " + marker + "\n"
	// A directory with the name the old code used, made by someone else
	// (nobody, world-writable), holding their own "shim".
	old := filepath.Join(os.TempDir(), "warden-shim-0123456789abcdef01234567")
	_ = os.RemoveAll(old)
	if err := os.MkdirAll(old, 0o777); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(old)
	os.Chmod(old, 0o777)
	if err := os.WriteFile(filepath.Join(old, shim.Name), []byte(planted), 0o777); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Chown(old, sandboxUID, sandboxUID)
	}

	// Force the private copy (a root warden whose binary nobody can reach).
	shimMu.Lock()
	saved := shimCur
	shimCur, testShimCopy = nil, true
	shimMu.Unlock()
	defer func() {
		shimMu.Lock()
		shimCur, testShimCopy = saved, false
		shimMu.Unlock()
	}()
	check := func(what string) {
		t.Helper()
		res := run(t, Spec{Argv: sh(`echo ok`)})
		if string(res.Stdout) != "ok\n" {
			t.Fatalf("%s: %q %q", what, res.Stdout, res.Stderr)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%s: the planted shim ran", what)
		}
	}
	check("with the old directory planted")
	shimMu.Lock()
	first := shimCur
	shimMu.Unlock()
	if first == nil || !first.copied {
		t.Fatal("no private copy was made")
	}
	dir := filepath.Dir(first.path)
	fi, err := os.Lstat(dir)
	if err != nil || fi.Mode().Perm() != 0o711 || strings.Contains(dir, "warden") {
		t.Fatalf("copy directory %s: %v %v", dir, fi.Mode(), err)
	}

	// A temp cleaner removes the copy; someone recreates the path with
	// their own file.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	if err := os.WriteFile(first.path, []byte(planted), 0o777); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	check("after the copy was replaced")
	shimMu.Lock()
	second := shimCur
	shimMu.Unlock()
	if second == first || second.path == first.path {
		t.Fatalf("the replaced copy is still used: %s", second.path)
	}
	defer os.RemoveAll(filepath.Dir(second.path))

	// Even if the check before the run were raced, bubblewrap binds the fd,
	// not the path: swapping the file under an intact-looking record fails
	// closed.
	shimMu.Lock()
	stale := &shimBinary{f: first.f, path: first.path, dev: first.dev, ino: first.ino, copied: true}
	shimMu.Unlock()
	spec := Spec{Argv: sh(`echo ok`)}
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		t.Fatal(err)
	}
	r, err := prepareWith(spec, bwrap, stale.f)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res, err := r.wait(); err == nil {
		t.Fatalf("a deleted shim's fd ran: %+v", res)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the planted shim ran")
	}
}

// TestSharedMemoryHogKilled: shared anonymous memory counts against the
// memory limit.
func TestSharedMemoryHogKilled(t *testing.T) {
	hog := "import mmap, time\nm = mmap.mmap(-1, 400 << 20, flags=mmap.MAP_SHARED)\nfor i in range(0, 400 << 20, 4096):\n    m[i] = 1\nprint('SURVIVED')\ntime.sleep(1)\n"
	res := run(t, Spec{Limits: Limits{Memory: 64 << 20, Timeout: 20 * time.Second}, Argv: []string{"python3", "-c", hog}})
	if !res.Killed || res.KillReason != KilledMemory || strings.Contains(string(res.Stdout), "SURVIVED") {
		t.Fatalf("shared memory hog: exit %d killed %v reason %q stdout %q stderr %q", res.ExitCode, res.Killed, res.KillReason, res.Stdout, res.Stderr)
	}
	// /dev (and /dev/shm) cannot hold files, Landlock or not.
	testWithoutLandlock = true
	defer func() { testWithoutLandlock = false }()
	res = run(t, Spec{Argv: sh(`(echo x > /dev/shm/f) 2>/dev/null && echo WROTE-SHM; (echo x > /dev/f) 2>/dev/null && echo WROTE-DEV; echo x > /dev/null && echo NULL-OK`)})
	if out := string(res.Stdout); out != "NULL-OK\n" {
		t.Fatalf("/dev: %q %q", out, res.Stderr)
	}
}

// TestSeccompKillReason: a syscall the filter kills for (the x32 ABI) is
// reported as kill reason seccomp.
func TestSeccompKillReason(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Log("only x86_64 has a foreign ABI (x32) to call from python")
		return
	}
	res := run(t, Spec{Argv: []string{"python3", "-c", fmt.Sprintf("import ctypes\nctypes.CDLL(None).syscall(%d)\nprint('ALIVE')", 0x40000000|unix.SYS_GETPID)}})
	if !res.Killed || res.KillReason != KilledSeccomp || strings.Contains(string(res.Stdout), "ALIVE") {
		t.Fatalf("x32 syscall: exit %d killed %v reason %q stdout %q", res.ExitCode, res.Killed, res.KillReason, res.Stdout)
	}
}

// TestHostPathsHidden: what the sandbox's mountinfo shows of the host is a
// random name, never one that says warden or work; the egress socket
// turns away a client that is not the sandbox's pid 1.
func TestHostPathsHidden(t *testing.T) {
	need(t)
	p, err := Start(context.Background(), Spec{Argv: sh(`cat /proc/self/mountinfo; echo END; read x`), Egress: &egress.Options{Allow: []string{"example.org"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	sc := bufio.NewScanner(p.Stdout)
	var mounts []string
	for sc.Scan() {
		if sc.Text() == "END" {
			break
		}
		mounts = append(mounts, sc.Text())
	}
	seen := 0
	for _, m := range mounts {
		f := strings.Fields(m)
		if len(f) < 5 {
			continue
		}
		switch f[4] {
		case WorkMount, socketPath:
			seen++
			if strings.Contains(f[3], "warden") || strings.Contains(f[3], "work") || strings.Contains(f[3], "egress") {
				t.Errorf("mount %s shows %s", f[4], f[3])
			}
		}
	}
	if seen != 2 {
		t.Errorf("work dir or socket mount not found in %q", mounts)
	}
	// A host process other than the sandbox's pid 1 — this test, here —
	// is refused by the egress socket, even knowing its path.
	c, err := net.Dial("unix", filepath.Join(p.r.sockDir, hostSocket))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Fatalf("a foreign client was served: %q", line)
	}
	p.Stdin.Close()
	res, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Egress) != 0 {
		t.Errorf("the foreign client's attempt was handled: %+v", res.Egress)
	}
}

// TestEgressBounded: a command cannot hold more than maxEgressConns
// connections through the proxy at once.
func TestEgressBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	opts := &egress.Options{Allow: []string{"x.test:*"}, Resolver: testResolver{"x.test": addr.Addr()},
		AllowAddr: func(a netip.Addr) bool { return a == addr.Addr() }}
	// Open maxEgressConns+8 proxy connections that never finish their
	// request, then one more that asks.
	py := fmt.Sprintf(`import socket, time
held = []
for i in range(%d):
    s = socket.create_connection(('127.0.0.1', %d)); held.append(s)
time.sleep(1)  # until the forwarder has taken every one to the proxy
s = socket.create_connection(('127.0.0.1', %d))
s.sendall(b'CONNECT x.test:%d HTTP/1.1\r\n\r\n')
s.settimeout(5)
print(s.recv(100).decode().split('\r\n')[0])
`, maxEgressConns+8, ProxyPort, ProxyPort, addr.Port())
	res := run(t, Spec{Egress: opts, Argv: []string{"python3", "-c", py}})
	if !strings.Contains(string(res.Stdout), "503") {
		t.Fatalf("connections beyond the bound: %q %q", res.Stdout, res.Stderr)
	}
}
