//go:build linux

// Package shim is the sandbox's init: the code that runs inside the
// sandbox, as warden's own executable re-executed by bubblewrap under the
// name Name, before the command. Its init function recognises that name,
// reads its Config from FdConfig, applies no_new_privs, Landlock, the
// rlimits and the seccomp filter, and execs the command — or, for a
// sandbox with egress, forwards the proxy port and runs the command as its
// child.
//
// It is apart from package sandbox, with few imports (none of net/http,
// none of warden's domain), because Go initialises packages in dependency
// and import-path order: a package with light dependencies initialises
// early, so a shim start does not pay for the initialisation of the rest of
// warden's binary.
package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Name is the shim's file name inside the sandbox, and how the init
// function recognises that it runs as the shim.
const Name = "warden-sandbox-init"

// Fds the shim receives (bubblewrap passes inherited fds through).
const (
	FdConfig  = 3 // the shim's Config (JSON), read once
	FdStarted = 4 // the shim writes one byte, 1+the Landlock ABI applied, here just before it execs the command
)

// Failed is the shim's exit status when it could not set the
// sandbox up.
const Failed = 125

// Shim modes.
const (
	ModeExec      = "exec"      // apply limits, exec the command
	ModeSupervise = "supervise" // pid 1: reap, forward the proxy port (with Socket), run the exec shim as a child
)

// Config is what warden tells the shim, through a pipe (FdConfig).
// Env may hold secrets: it never travels on a command line.
type Config struct {
	Mode      string   `json:"mode"`
	Argv      []string `json:"argv"`
	Env       []string `json:"env"`
	Dir       string   `json:"dir"`
	Rlimits   []Rlimit `json:"rlimits"`
	Landlock  Landlock `json:"landlock"`
	Socket    string   `json:"socket,omitempty"`
	ProxyPort int      `json:"proxy_port,omitempty"`
}

var errNotFound = errors.New("executable file not found")

// Rlimit is one resource limit (unix.RLIMIT_*).
type Rlimit struct {
	Resource int    `json:"resource"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

func init() {
	if a := os.Args[0]; a[strings.LastIndexByte(a, '/')+1:] != Name {
		return
	}
	// Limits and filters are per thread until exec: stay on this one.
	runtime.LockOSThread()
	runShim()
}

func shimFail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, Name+": "+format+"\n", args...)
	os.Exit(Failed)
}

func runShim() {
	// First of all: not dumpable. A non-dumpable process's /proc/PID/mem,
	// environ, fd/ and maps are closed to every process without
	// CAP_SYS_PTRACE over it, the same uid included, so the command
	// cannot read or write the supervisor (the sandbox's pid 1) through
	// /proc even where Landlock is missing. execve resets it for the
	// command itself, whose memory is its own business.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		shimFail("dumpable: %v", err)
	}
	f := os.NewFile(FdConfig, "config")
	b, err := io.ReadAll(io.LimitReader(f, 16<<20))
	f.Close()
	if err != nil {
		shimFail("reading the config: %v", err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		shimFail("bad config: %v", err)
	}
	closeInherited()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		shimFail("no_new_privs: %v", err)
	}
	if cfg.Mode == ModeSupervise {
		supervise(cfg)
		return
	}
	execCommand(cfg)
}

// closeInherited marks every fd above stderr close-on-exec, so nothing
// warden or bubblewrap held reaches the command.
func closeInherited() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		shimFail("listing fds: %v", err)
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

func execCommand(cfg Config) {
	ll, err := applyLandlock(cfg.Landlock)
	if err != nil {
		shimFail("%v", err)
	}
	for _, r := range cfg.Rlimits {
		if err := unix.Setrlimit(r.Resource, &unix.Rlimit{Cur: r.Cur, Max: r.Max}); err != nil {
			shimFail("setrlimit %d: %v", r.Resource, err)
		}
	}
	if err := loadSeccomp(); err != nil {
		shimFail("%v", err)
	}
	// Tell warden the sandbox is set up, and which Landlock ABI it
	// applied (the byte is 1+ABI); the fd is close-on-exec.
	_, _ = unix.Write(FdStarted, []byte{byte(1 + ll)})
	path, err := lookPath(cfg.Argv[0], cfg.Env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: command not found\n", cfg.Argv[0])
		os.Exit(127)
	}
	err = unix.Exec(path, cfg.Argv, cfg.Env)
	fmt.Fprintf(os.Stderr, "%s: %s: %v\n", Name, cfg.Argv[0], err)
	os.Exit(126)
}

// lookPath finds a command on the PATH of env, like a shell does.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errNotFound
}

// supervisorRlimits are the rlimits the supervisor applies to itself:
// those that cannot break the Go runtime. RLIMIT_AS would make the
// runtime's next mapping fail (a crash), RLIMIT_NPROC its next thread, and
// RLIMIT_CPU would count the forwarder's copying; the command gets them all
// (the exec shim sets them before exec).
var supervisorRlimits = map[int]bool{unix.RLIMIT_CORE: true, unix.RLIMIT_FSIZE: true, unix.RLIMIT_NOFILE: true}

// supervise is the sandbox's pid 1 (bubblewrap runs with --as-pid-1, so
// there is no bubblewrap init holding no filter at all). It is not dumpable,
// sets the rlimits that are safe for it and the seccomp filter on itself,
// with egress listens on the proxy port in the sandbox's network namespace
// and forwards every connection to the egress socket, and runs the shim in
// exec mode as its child, which applies Landlock, every rlimit and the
// filter and execs the command. As pid 1 it reaps every orphan, forwards
// SIGTERM, SIGINT and SIGHUP to the command, and exits as the command did;
// its exit takes every other process of the PID namespace with it.
func supervise(cfg Config) {
	for _, r := range cfg.Rlimits {
		if !supervisorRlimits[r.Resource] {
			continue
		}
		if err := unix.Setrlimit(r.Resource, &unix.Rlimit{Cur: r.Cur, Max: r.Max}); err != nil {
			shimFail("setrlimit %d: %v", r.Resource, err)
		}
	}
	ln := -1
	if cfg.Socket != "" {
		var err error
		if ln, err = listenLoopback(cfg.ProxyPort); err != nil {
			shimFail("egress forwarder: %v", err)
		}
	}
	if err := loadSeccomp(); err != nil {
		shimFail("%v", err)
	}
	if ln >= 0 {
		go forward(ln, cfg.Socket)
	}
	child := cfg
	child.Mode = ModeExec
	b, err := json.Marshal(child)
	if err != nil {
		shimFail("%v", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		shimFail("%v", err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	// The child reads its config from FdConfig and reports on FdStarted.
	started := os.NewFile(FdStarted, "started")
	proc, err := os.StartProcess("/proc/self/exe", []string{Name}, &os.ProcAttr{
		Dir: cfg.Dir, Env: []string{},
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr, r, started},
	})
	if err != nil {
		shimFail("starting the command: %v", err)
	}
	r.Close()
	started.Close()
	_, _ = w.Write(b)
	w.Close()
	go func() {
		for s := range sigs {
			_ = proc.Signal(s)
		}
	}()
	// Reap everything: orphans of the command are re-parented to pid 1.
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			shimFail("waiting for the command: %v", err)
		}
		if pid != proc.Pid {
			continue
		}
		if ws.Signaled() {
			os.Exit(128 + int(ws.Signal()))
		}
		os.Exit(ws.ExitStatus())
	}
}

// The forwarder uses raw sockets rather than package net, whose
// initialisation would delay the shim (see the package comment).

func listenLoopback(port int) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	if err := syscall.Listen(fd, 128); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// forward accepts on ln and joins each connection to a new connection to
// the egress socket.
func forward(ln int, socket string) {
	for {
		c, _, err := syscall.Accept4(ln, syscall.SOCK_CLOEXEC)
		if err == syscall.EINTR || err == syscall.ECONNABORTED {
			continue
		}
		if err != nil {
			return
		}
		go func() {
			defer syscall.Close(c)
			up, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				return
			}
			defer syscall.Close(up)
			if err := syscall.Connect(up, &syscall.SockaddrUnix{Name: socket}); err != nil {
				return
			}
			done := make(chan struct{})
			go func() { copyFd(up, c); close(done) }()
			copyFd(c, up)
			<-done
		}()
	}
}

// copyFd copies from src to dst until src ends, then half-closes dst.
func copyFd(dst, src int) {
	buf := make([]byte, 32<<10)
	for {
		n, err := syscall.Read(src, buf)
		if err == syscall.EINTR {
			continue
		}
		if n <= 0 || err != nil {
			break
		}
		for off := 0; off < n; {
			m, err := syscall.Write(dst, buf[off:n])
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				_ = syscall.Shutdown(src, syscall.SHUT_RD)
				return
			}
			off += m
		}
	}
	_ = syscall.Shutdown(dst, syscall.SHUT_WR)
}
