//go:build linux

package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warden-dev/warden/internal/sandbox/egress"
	"github.com/warden-dev/warden/internal/sandbox/shim"
	"golang.org/x/sys/unix"
)

// testWithoutLandlock turns Landlock off, so tests can show that the
// namespaces and mounts alone hold the filesystem boundary. Tests only.
var testWithoutLandlock bool

// sandboxUID is the host uid/gid bubblewrap runs as when warden runs as
// root (nobody).
const sandboxUID = 65534

// Paths inside the sandbox.
const (
	shimPath   = "/.warden/" + shim.Name
	socketPath = "/.warden/egress.sock"
)

// SetupError reports a sandbox that could not be set up: the command did not
// run. Detail holds bubblewrap's or the shim's own words, for operators.
type SetupError struct {
	Detail string
}

func (e *SetupError) Error() string { return "sandbox setup failed: " + e.Detail }

// Available reports whether commands can be sandboxed here: bwrap is on
// PATH and the executable can serve as the shim.
func Available() error {
	if _, err := exec.LookPath("bwrap"); err != nil {
		return ErrNoBubblewrap
	}
	_, err := shimExecutable()
	return err
}

var (
	shimOnce     sync.Once
	shimPathHost string
	shimErr      error
)

// shimExecutable returns the host path of the executable to bind as the
// shim: warden's own. When warden runs as root and the sandbox's uid
// cannot reach that path (a test binary under a 0700 build directory), a
// copy is made once, content-addressed, in a root-owned 0755 directory.
func shimExecutable() (string, error) {
	shimOnce.Do(func() { shimPathHost, shimErr = findShim() })
	return shimPathHost, shimErr
}

func findShim() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("sandbox: cannot find warden's own executable: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	if os.Geteuid() != 0 || reachableByOthers(exe) {
		return exe, nil
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("warden-shim-%x", h.Sum(nil)[:12]))
	dst := filepath.Join(dir, shim.Name)
	if fi, err := os.Lstat(dir); err == nil {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
			return "", fmt.Errorf("sandbox: %s exists but is not a root-owned, non-writable directory", dir)
		}
		if _, err := os.Stat(dst); err == nil {
			return dst, nil
		}
	} else if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".shim-*")
	if err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if _, err := io.Copy(tmp, f); err != nil {
		tmp.Close()
		return "", fmt.Errorf("sandbox: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	return dst, nil
}

// reachableByOthers says whether every directory above p is searchable and
// p itself readable and executable by any user.
func reachableByOthers(p string) bool {
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm()&0o005 != 0o005 {
		return false
	}
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == "/" {
			return true
		}
	}
}

// Process is a command running in a sandbox (Start).
type Process struct {
	// Stdin and Stdout are pipes to the command. Close Stdin to send EOF.
	Stdin  io.WriteCloser
	Stdout io.ReadCloser

	r      *runner
	done   chan struct{}
	result *Result
	err    error
}

// Start starts spec's command and returns at once. The caller reads
// Process.Stdout, writes Process.Stdin, and must call Wait (or Kill and
// Wait) to release the sandbox. Stderr is captured up to Limits.Output and
// returned in the Result. Timeout and CPU in spec.Limits apply to the whole
// life of the process; unlike Run, Start sets neither by default.
func Start(ctx context.Context, spec Spec) (*Process, error) {
	// A server runs until stopped: no wall-clock or CPU-time default.
	if spec.Limits.Timeout == 0 {
		spec.Limits.Timeout = -1
	}
	if spec.Limits.CPU == 0 {
		spec.Limits.CPU = -1
	}
	r, err := prepare(spec)
	if err != nil {
		return nil, err
	}
	// Plain pipes, not exec.Cmd's: Wait must not close what the caller is
	// still reading.
	inR, stdin, err := os.Pipe()
	if err != nil {
		r.cleanup()
		return nil, err
	}
	stdout, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		stdin.Close()
		r.cleanup()
		return nil, err
	}
	r.cmd.Stdin, r.cmd.Stdout = inR, outW
	r.files = append(r.files, inR, outW)
	if err := r.start(ctx); err != nil {
		stdin.Close()
		stdout.Close()
		return nil, err
	}
	p := &Process{Stdin: stdin, Stdout: stdout, r: r, done: make(chan struct{})}
	go func() {
		p.result, p.err = r.wait()
		close(p.done)
	}()
	return p, nil
}

// Wait waits for the process to end and returns how it ended.
func (p *Process) Wait() (*Result, error) {
	<-p.done
	return p.result, p.err
}

// Kill ends the whole process tree; Wait then reports KilledByCaller.
func (p *Process) Kill() {
	p.r.kill(KilledByCaller)
}

// Done is closed once the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Run runs spec's command to completion in a sandbox. A command that ran
// and failed, was killed or timed out is a Result, not an error; errors
// mean it could not run at all (ErrNoBubblewrap, *SetupError, bad Spec).
func Run(ctx context.Context, spec Spec) (*Result, error) {
	r, err := prepare(spec)
	if err != nil {
		return nil, err
	}
	if spec.Stdin != nil {
		r.cmd.Stdin = spec.Stdin
	}
	r.stdout = newCapture(r.limits.Output)
	r.cmd.Stdout = r.stdout
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	return r.wait()
}

// runner is one sandbox's lifetime: prepared, started, waited for.
type runner struct {
	spec    Spec
	limits  Limits
	cmd     *exec.Cmd
	stdout  *capture // nil for Start (a pipe)
	stderr  *capture
	workDir string
	tmpWork bool   // workDir was made for this run
	sockDir string // holds the egress socket
	proxy   *egress.Proxy
	ln      net.Listener
	files   []*os.File // closed once started
	started *os.File   // read end of the shim's started pipe

	mu     sync.Mutex
	reason string // why warden killed it, if it did
	start_ time.Time
	stop   func() bool
	watch  chan struct{}
	ran    chan bool // whether the shim got as far as exec'ing the command
}

func prepare(spec Spec) (*runner, error) {
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		return nil, errors.New("sandbox: empty command")
	}
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		return nil, ErrNoBubblewrap
	}
	exe, err := shimExecutable()
	if err != nil {
		return nil, err
	}
	r := &runner{spec: spec, limits: spec.Limits.WithDefaults(), watch: make(chan struct{}), ran: make(chan bool, 1)}
	ok := false
	defer func() {
		if !ok {
			if r.started != nil {
				r.started.Close()
			}
			r.cleanup()
		}
	}()
	asRoot := os.Geteuid() == 0
	if err := r.makeWorkDir(asRoot); err != nil {
		return nil, err
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	r.files = append(r.files, cfgR)
	startedR, startedW, err := os.Pipe()
	if err != nil {
		cfgW.Close()
		return nil, err
	}
	r.started = startedR
	r.files = append(r.files, startedW)

	args := []string{
		"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--unshare-cgroup-try",
		"--die-with-parent", "--new-session", "--hostname", "sandbox",
		"--ro-bind", exe, shimPath,
	}
	binds := spec.Binds
	try := false
	if len(binds) == 0 {
		binds, try = DefaultBinds, true
	}
	bargs, err := bindArgs(binds, try)
	if err != nil {
		cfgW.Close()
		return nil, err
	}
	args = append(args, bargs...)
	args = append(args,
		"--proc", "/proc", "--dev", "/dev",
		"--size", fmt.Sprint(r.limits.Tmp), "--tmpfs", "/tmp",
		"--bind", r.workDir, WorkMount,
	)
	cfg := shim.Config{Mode: shim.ModeExec, Argv: spec.Argv, Dir: spec.Dir, Rlimits: rlimits(r.limits)}
	if cfg.Dir == "" {
		cfg.Dir = WorkMount
	}
	env := map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WorkMount, "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
	if spec.Egress != nil {
		if err := r.startProxy(asRoot); err != nil {
			cfgW.Close()
			return nil, err
		}
		args = append(args, "--bind", filepath.Join(r.sockDir, "egress.sock"), socketPath)
		cfg.Mode, cfg.Socket, cfg.ProxyPort = shim.ModeSupervise, socketPath, ProxyPort
		proxy := fmt.Sprintf("http://127.0.0.1:%d", ProxyPort)
		for _, k := range []string{"HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"} {
			env[k] = proxy
		}
		env["NO_PROXY"], env["no_proxy"] = "", ""
	}
	for k, v := range spec.Env {
		env[k] = v
	}
	for k, v := range env {
		cfg.Env = append(cfg.Env, k+"="+v)
	}
	cfg.Landlock = shim.Landlock{RW: []string{WorkMount, "/tmp"}, Dev: []string{"/dev"}}
	if spec.Egress != nil {
		cfg.Landlock.ConnectPort = ProxyPort
	}
	cfg.Landlock.Off = testWithoutLandlock
	// The root tmpfs bubblewrap built the binds on becomes read-only, so
	// only /work, /tmp and /dev stay writable even without Landlock.
	args = append(args, "--remount-ro", "/", "--chdir", cfg.Dir, "--", shimPath)

	cmd := exec.Command(bwrap, args...)
	cmd.Env = []string{} // nothing of warden's environment reaches the sandbox
	cmd.ExtraFiles = []*os.File{cfgR, startedW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if asRoot {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: sandboxUID, Gid: sandboxUID, Groups: []uint32{}}
	}
	r.stderr = newCapture(r.limits.Output)
	cmd.Stderr = r.stderr
	r.cmd = cmd
	if os.Getenv("SBX_DEBUG") != "" {
		fmt.Fprintln(os.Stderr, cmd.Args)
	}
	// The config goes through a pipe, never the command line: the
	// environment may hold secrets, and command lines are world-readable.
	b, err := json.Marshal(cfg)
	if err != nil {
		cfgW.Close()
		return nil, err
	}
	go func() {
		_, _ = cfgW.Write(b)
		cfgW.Close()
	}()
	ok = true
	return r, nil
}

// bindArgs turns host paths into read-only binds; a symlink is recreated
// as the same symlink (so /lib → usr/lib keeps working).
func bindArgs(paths []string, try bool) ([]string, error) {
	var args []string
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("sandbox: bind %q is not an absolute path", p)
		}
		p = filepath.Clean(p)
		if p == "/" || slices.ContainsFunc([]string{"/proc", "/dev", "/tmp", WorkMount, "/.warden"}, func(r string) bool {
			return p == r || strings.HasPrefix(p, r+"/")
		}) {
			return nil, fmt.Errorf("sandbox: bind %q is not allowed (/, /proc, /dev, /tmp, %s and /.warden are the sandbox's own)", p, WorkMount)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			if try {
				continue
			}
			return nil, fmt.Errorf("sandbox: bind %q: the path does not exist", p)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			t, err := os.Readlink(p)
			if err != nil {
				return nil, fmt.Errorf("sandbox: bind %q: %w", p, err)
			}
			args = append(args, "--symlink", t, p)
			continue
		}
		args = append(args, "--ro-bind", p, p)
	}
	return args, nil
}

func (r *runner) startProxy(asRoot bool) error {
	dir, err := os.MkdirTemp("", "warden-egress-*")
	if err != nil {
		return err
	}
	r.sockDir = dir
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	o := *r.spec.Egress
	p, err := egress.New(o)
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, "egress.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("sandbox: egress socket: %w", err)
	}
	if asRoot {
		if err := os.Chown(sock, sandboxUID, sandboxUID); err != nil {
			ln.Close()
			return err
		}
	}
	r.proxy, r.ln = p, ln
	go func() { _ = p.Serve(ln) }()
	return nil
}

func (r *runner) start(ctx context.Context) error {
	r.start_ = time.Now()
	err := r.cmd.Start()
	for _, f := range r.files {
		f.Close()
	}
	r.files = nil
	if err != nil {
		r.started.Close()
		r.cleanup()
		return fmt.Errorf("sandbox: starting bwrap: %w", err)
	}
	if r.limits.Timeout > 0 {
		t := time.AfterFunc(r.limits.Timeout, func() { r.kill(KilledTimeout) })
		r.stop = t.Stop
	}
	go func() {
		select {
		case <-ctx.Done():
			r.kill(KilledCancelled)
		case <-r.watch:
		}
	}()
	go r.readStarted()
	go r.watchMemory()
	return nil
}

// readStarted learns whether the shim reached the command: it writes one
// byte just before exec; the pipe closes without it when bubblewrap or the
// shim failed to set the sandbox up.
func (r *runner) readStarted() {
	var b [1]byte
	n, _ := io.ReadFull(r.started, b[:])
	r.started.Close()
	r.ran <- n == 1
}

// kill ends the whole tree: bubblewrap's process group, whose death takes
// the sandbox's pid 1 (--die-with-parent) and with it every process of its
// PID namespace.
func (r *runner) kill(reason string) {
	r.mu.Lock()
	if r.reason == "" {
		r.reason = reason
	}
	r.mu.Unlock()
	if r.cmd.Process != nil {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (r *runner) wait() (*Result, error) {
	werr := r.cmd.Wait()
	close(r.watch)
	if r.stop != nil {
		r.stop()
	}
	res := &Result{ExitCode: -1, Duration: time.Since(r.start_)}
	ran := <-r.ran
	if st := r.cmd.ProcessState; st != nil {
		res.CPUTime = st.UserTime() + st.SystemTime()
		if ws, ok := st.Sys().(syscall.WaitStatus); ok {
			switch {
			case ws.Exited():
				res.ExitCode = ws.ExitStatus()
			case ws.Signaled():
				res.ExitCode = 128 + int(ws.Signal())
			}
		}
	}
	r.mu.Lock()
	reason := r.reason
	r.mu.Unlock()
	stderr := r.stderr.bytes(r.spec.Redact)
	if !ran && (reason == "" || reason == KilledCancelled) {
		r.cleanup()
		return nil, &SetupError{Detail: strings.TrimSpace(string(stderr))}
	}
	if werr != nil && res.ExitCode == -1 && reason == "" {
		r.cleanup()
		return nil, fmt.Errorf("sandbox: %w", werr)
	}
	if reason == "" {
		reason = r.kernelReason(res)
	}
	res.Killed, res.KillReason = reason != "", reason
	res.Stderr, res.Truncated = stderr, r.stderr.truncated()
	if r.stdout != nil {
		res.Stdout = r.stdout.bytes(r.spec.Redact)
		res.Truncated = res.Truncated || r.stdout.truncated()
	}
	res.Landlock = shim.LandlockABI()
	if r.proxy != nil {
		r.ln.Close()
		r.proxy.Close()
		res.Egress = r.proxy.Attempts()
	}
	if r.tmpWork && r.spec.KeepWorkDir {
		res.WorkDir = r.workDir
	}
	r.cleanup()
	return res, nil
}

// kernelReason names a limit the kernel enforced, from the exit status.
func (r *runner) kernelReason(res *Result) string {
	switch res.ExitCode {
	case 128 + int(syscall.SIGXCPU):
		return KilledCPU
	case 128 + int(syscall.SIGXFSZ):
		return KilledFileSize
	case 128 + int(syscall.SIGKILL):
		// RLIMIT_CPU's hard limit is one second above the soft one.
		if res.CPUTime >= r.limits.CPU {
			return KilledCPU
		}
		return KilledSignal
	}
	return ""
}

func (r *runner) cleanup() {
	for _, f := range r.files {
		f.Close()
	}
	r.files = nil
	if r.ln != nil {
		r.ln.Close()
	}
	if r.proxy != nil {
		r.proxy.Close()
	}
	if r.sockDir != "" {
		os.RemoveAll(r.sockDir)
		r.sockDir = ""
	}
	if r.tmpWork && !r.spec.KeepWorkDir && r.workDir != "" {
		os.RemoveAll(r.workDir)
		r.workDir = ""
	}
}

// LandlockABI returns the kernel's Landlock ABI version; 0 when it has
// none.
func LandlockABI() int { return shim.LandlockABI() }

// rlimits are the shim's rlimits for l.
func rlimits(l Limits) []shim.Rlimit {
	out := []shim.Rlimit{{Resource: unix.RLIMIT_CORE}}
	if l.CPU > 0 {
		s := uint64((l.CPU + time.Second - 1) / time.Second)
		out = append(out, shim.Rlimit{Resource: unix.RLIMIT_CPU, Cur: s, Max: s + 1})
	}
	set := func(res int, v int64) {
		if v > 0 {
			out = append(out, shim.Rlimit{Resource: res, Cur: uint64(v), Max: uint64(v)})
		}
	}
	set(unix.RLIMIT_AS, l.AddressSpace)
	set(unix.RLIMIT_NPROC, l.Processes)
	set(unix.RLIMIT_FSIZE, l.FileSize)
	set(unix.RLIMIT_NOFILE, l.OpenFiles)
	return out
}
