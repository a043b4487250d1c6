//go:build linux

package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/warden-dev/warden/internal/sandbox/egress"
	"github.com/warden-dev/warden/internal/sandbox/layout"
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
	_, err := shimFile()
	return err
}

// shimBinary is the executable bound into the sandbox as the shim, held
// open: bubblewrap binds it from the fd (--ro-bind-fd), resolving the fd's
// current path and checking that what it mounted is the same file, so a
// file planted at that path is never what runs.
type shimBinary struct {
	f        *os.File
	path     string // the path bubblewrap will resolve: the file's own
	dev, ino uint64
	copied   bool // a private copy, in a directory of its own
}

var (
	shimMu  sync.Mutex
	shimCur *shimBinary
	// testShimCopy forces the private copy even when warden's own
	// executable would do. Tests only.
	testShimCopy bool
)

// shimFile returns the open executable to bind as the shim: warden's own,
// or, when the sandbox's uid could not reach it (warden as root, a test
// binary under a 0700 build directory) or it is not a file only root or
// warden's user can change, a private copy. Every call re-checks that the
// path still names the same file, owned by root or warden's euid and not
// writable by group or others (a temp cleaner may have removed the copy's
// directory, and anyone may have recreated its path); if not, a new copy is
// made. The returned file stays open for the process's life.
func shimFile() (*os.File, error) {
	shimMu.Lock()
	defer shimMu.Unlock()
	if shimCur != nil && shimCur.intact() {
		return shimCur.f, nil
	}
	// An earlier file is not closed: a concurrent Start may be passing it
	// to bubblewrap this very moment. This happens only when the copy was
	// tampered with.
	sb, err := findShim()
	if err != nil {
		return nil, err
	}
	shimCur = sb
	return sb.f, nil
}

// intact says whether the path still names the open file, and the file is
// still one only root or warden's user can change.
func (sb *shimBinary) intact() bool {
	var st, lst unix.Stat_t
	if unix.Fstat(int(sb.f.Fd()), &st) != nil || unix.Lstat(sb.path, &lst) != nil {
		return false
	}
	return st.Dev == sb.dev && st.Ino == sb.ino && lst.Dev == sb.dev && lst.Ino == sb.ino &&
		st.Nlink > 0 && safeOwner(&st) && (!sb.copied || st.Uid == uint32(os.Geteuid()))
}

// safeOwner: a regular file owned by root or warden's euid, writable by
// neither group nor others.
func safeOwner(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFREG && (st.Uid == 0 || st.Uid == uint32(os.Geteuid())) && st.Mode&0o022 == 0
}

func findShim() (*shimBinary, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sandbox: cannot find warden's own executable: %w", err)
	}
	// /proc/self/exe is the running executable itself, whatever its path
	// now names.
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil && !testShimCopy && safeOwner(&st) && (os.Geteuid() != 0 || reachableByOthers(p)) {
		sb := &shimBinary{f: f, path: p, dev: st.Dev, ino: st.Ino}
		if sb.intact() {
			return sb, nil
		}
	}
	defer f.Close()
	return copyShim(f)
}

// copyShim copies the executable open as src into a fresh private
// directory: os.MkdirTemp's (0700, random name), then made 0711 through its
// fd so the sandbox's uid can reach the file without listing the directory.
// The file is written, made 0755 and checked through fds only: nothing is
// ever changed by path, so no symlink can redirect it. The directory is
// left in $TMPDIR when warden exits (one per process that needed a copy).
func copyShim(src *os.File) (*shimBinary, error) {
	dir, err := os.MkdirTemp("", "")
	if err != nil {
		return nil, fmt.Errorf("sandbox: shim copy: %w", err)
	}
	fail := func(err error) (*shimBinary, error) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("sandbox: shim copy: %w", err)
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(dfd)
	var dst unix.Stat_t
	if err := unix.Fstat(dfd, &dst); err != nil {
		return fail(err)
	}
	if dst.Uid != uint32(os.Geteuid()) || dst.Mode&0o777 != 0o700 {
		return fail(errors.New("the new directory is not warden's own"))
	}
	wfd, err := unix.Openat(dfd, shim.Name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o700)
	if err != nil {
		return fail(err)
	}
	w := os.NewFile(uintptr(wfd), shim.Name)
	if _, err := io.Copy(w, io.NewSectionReader(src, 0, 1<<40)); err != nil {
		w.Close()
		return fail(err)
	}
	if err := w.Chmod(0o755); err != nil { // fchmod
		w.Close()
		return fail(err)
	}
	if err := w.Close(); err != nil {
		return fail(err)
	}
	// A read-only fd: a file open for writing cannot be executed.
	rfd, err := unix.Openat(dfd, shim.Name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	f := os.NewFile(uintptr(rfd), shim.Name)
	var st unix.Stat_t
	if err := unix.Fstat(rfd, &st); err != nil || !safeOwner(&st) || st.Uid != uint32(os.Geteuid()) {
		f.Close()
		return fail(errors.New("the copy is not warden's own"))
	}
	if err := unix.Fchmod(dfd, 0o711); err != nil {
		f.Close()
		return fail(err)
	}
	sb := &shimBinary{f: f, path: filepath.Join(dir, shim.Name), dev: st.Dev, ino: st.Ino, copied: true}
	if !sb.intact() {
		f.Close()
		return fail(errors.New("the copy changed under warden"))
	}
	return sb, nil
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
	spec     Spec
	limits   Limits
	cmd      *exec.Cmd
	stdout   *capture // nil for Start (a pipe)
	stderr   *capture
	workDir  string
	tmpWork  bool   // workDir was made for this run
	runDir   string // private per-run directory: work dir and egress socket
	sockDir  string // holds the egress socket
	proxy    *egress.Proxy
	ln       net.Listener
	files    []*os.File   // closed once started
	started  *os.File     // read end of the shim's started pipe
	landlock int          // the Landlock ABI the shim applied
	bwrapPid atomic.Int32 // bubblewrap's pid once started (the egress listener reads it)

	mu     sync.Mutex
	reason string    // why warden killed it, if it did
	begun  time.Time // when bubblewrap was started
	stop   func() bool
	watch  chan struct{}
	ran    chan bool // whether the shim got as far as exec'ing the command
}

func prepare(spec Spec) (*runner, error) {
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		return nil, errors.New("sandbox: empty command")
	}
	// The one look-up of bubblewrap in a run: callers need not check
	// Available first.
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		return nil, ErrNoBubblewrap
	}
	exe, err := shimFile()
	if err != nil {
		return nil, err
	}
	return prepareWith(spec, bwrap, exe)
}

// prepareWith prepares spec's run with bwrap as bubblewrap's path and exe
// as the shim's executable.
func prepareWith(spec Spec, bwrap string, exe *os.File) (*runner, error) {
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
	if err := r.makeRunDir(); err != nil {
		return nil, err
	}
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
	// Fds bubblewrap inherits: 3 the config, 4 the started pipe, 5 the
	// shim's executable (shared by every run: never closed here).
	extraFds := []*os.File{cfgR, startedW}

	// --as-pid-1: the shim is the sandbox's pid 1 (a supervisor that
	// reaps, non-dumpable, under the seccomp filter), not bubblewrap's own
	// init, which would hold no filter, no rlimits and stay dumpable: the
	// command could rewrite it through /proc/1/mem.
	args := []string{
		"--unshare-user", "--unshare-pid", "--as-pid-1", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--unshare-cgroup-try",
		"--die-with-parent", "--new-session", "--hostname", "sandbox",
		"--ro-bind-fd", strconv.Itoa(3 + len(extraFds)), shimPath,
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
		// /dev read-only: its device files stay writable, but no file can
		// be made in its unbounded tmpfs (/dev/shm included), Landlock or
		// not.
		"--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
		"--size", fmt.Sprint(r.limits.Tmp), "--tmpfs", "/tmp",
		"--bind", r.workDir, WorkMount,
	)
	cfg := shim.Config{Mode: shim.ModeSupervise, Argv: spec.Argv, Dir: spec.Dir, Rlimits: rlimits(r.limits)}
	if cfg.Dir == "" {
		cfg.Dir = WorkMount
	}
	env := map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WorkMount, "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
	if spec.Egress != nil {
		if err := r.startProxy(asRoot); err != nil {
			cfgW.Close()
			return nil, err
		}
		args = append(args, "--bind", filepath.Join(r.sockDir, hostSocket), socketPath)
		cfg.Socket, cfg.ProxyPort = socketPath, ProxyPort
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
	cmd.ExtraFiles = append(extraFds, exe)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if asRoot {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: sandboxUID, Gid: sandboxUID, Groups: []uint32{}}
	}
	r.stderr = newCapture(r.limits.Output)
	cmd.Stderr = r.stderr
	r.cmd = cmd
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
		if r := layout.ReservedBind(p); r != "" {
			return nil, fmt.Errorf("sandbox: bind %q is not allowed: it is the sandbox's own %s", p, r)
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

// makeRunDir makes the run's private directory on the host, which holds
// its fresh work directory and its egress socket: os.MkdirTemp's (random
// name, 0700), made 0711 through its fd so that the sandbox's uid can reach
// the random names inside without being able to list them.
func (r *runner) makeRunDir() error {
	dir, err := os.MkdirTemp("", "")
	if err != nil {
		return fmt.Errorf("sandbox: run directory: %w", err)
	}
	r.runDir = dir
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sandbox: run directory: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, 0o711); err != nil {
		return fmt.Errorf("sandbox: run directory: %w", err)
	}
	return nil
}

// hostSocket is the egress socket's name on the host, in a random
// directory: nothing in the name says what it is.
const hostSocket = "s"

// maxEgressConns bounds the connections one sandbox may have open through
// its proxy at once, so a command cannot exhaust warden's fds.
const maxEgressConns = 64

func (r *runner) startProxy(asRoot bool) error {
	dir, err := os.MkdirTemp(r.runDir, "")
	if err != nil {
		return err
	}
	r.sockDir = dir
	o := *r.spec.Egress
	if o.MaxConns == 0 {
		o.MaxConns = maxEgressConns
	}
	p, err := egress.New(o)
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, hostSocket)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("sandbox: egress socket: %w", err)
	}
	if asRoot {
		// Inside the run's private directory: no one else can have
		// replaced the name yet. Then the directory is handed over through
		// its fd.
		err := os.Chown(sock, sandboxUID, sandboxUID)
		if err == nil {
			err = chownFd(dir, sandboxUID)
		}
		if err != nil {
			ln.Close()
			return fmt.Errorf("sandbox: egress socket: %w", err)
		}
	}
	r.proxy, r.ln = p, &peerListener{Listener: ln, r: r}
	go func() { _ = p.Serve(r.ln) }()
	return nil
}

// chownFd hands directory dir to uid through an fd opened without
// following a symlink.
func chownFd(dir string, uid int) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fchown(fd, uid, uid)
}

// peerListener accepts only connections from this sandbox's pid 1, the
// supervising shim whose forwarder is the only legitimate client: another
// process running as the sandbox's uid on the host (nobody, when warden
// runs as root) that found the socket is turned away (SO_PEERCRED).
type peerListener struct {
	net.Listener
	r   *runner
	pid atomic.Int32 // the sandbox's pid 1, as the host sees it
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.fromSandbox(c) {
			return c, nil
		}
		c.Close()
	}
}

func (l *peerListener) fromSandbox(c net.Conn) bool {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	pid := l.pid.Load()
	if pid == 0 {
		pid = int32(l.r.sandboxInit())
		l.pid.Store(pid)
	}
	return pid > 0 && cred.Pid == pid
}

// sandboxInit returns the host pid of the sandbox's pid 1: bubblewrap's
// only child (with --as-pid-1, the shim). 0 if it is not known.
func (r *runner) sandboxInit() int {
	bp := r.bwrapPid.Load()
	if bp == 0 {
		return 0
	}
	pid := strconv.Itoa(int(bp))
	b, err := os.ReadFile("/proc/" + pid + "/task/" + pid + "/children")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

func (r *runner) start(ctx context.Context) error {
	r.begun = time.Now()
	err := r.cmd.Start()
	if err == nil {
		r.bwrapPid.Store(int32(r.cmd.Process.Pid))
	}
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
	if n == 1 {
		r.landlock = int(b[0]) - 1 // read by wait after <-r.ran
	}
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
	res := &Result{ExitCode: -1, Duration: time.Since(r.begun)}
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
	res.Landlock = r.landlock
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
	case 128 + int(syscall.SIGSYS):
		// The seccomp filter kills a foreign-architecture syscall.
		return KilledSeccomp
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
	if r.runDir != "" {
		// Empty unless the work directory is kept.
		os.Remove(r.runDir)
		r.runDir = ""
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
