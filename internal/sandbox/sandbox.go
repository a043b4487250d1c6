// Package sandbox runs commands inside a boundary sized to the task, on the
// assumption that one day the command will try something wrong. It is what
// the exec connector runs actions in and what sandboxed stdio MCP servers
// are started in.
//
// A command runs under bubblewrap (bwrap), never without it: Run and Start
// fail with ErrNoBubblewrap when bwrap is missing. Inside:
//
//   - new user, PID, IPC, UTS, mount, cgroup and network namespaces, with
//     --die-with-parent and --new-session;
//   - a root made of read-only binds only (Spec.Binds, DefaultBinds when
//     empty), a private size-capped /tmp, a fresh /proc of the sandbox's own
//     PID namespace, a minimal /dev, and one writable work directory
//     mounted at /work (WorkDir);
//   - rlimits on CPU seconds, address space, processes, file size and open
//     files, and a watchdog on the resident memory of the whole process
//     tree (Limits);
//   - a seccomp filter that refuses ptrace, mount, umount2, keyctl, bpf,
//     unshare, setns, kexec_load, init_module and their relatives, and
//     namespace-creating clone flags; Landlock (where the kernel has it)
//     limiting writes to /work, /tmp and /dev, and TCP to the egress port;
//   - a wall-clock timeout that kills the whole tree, and stdout and stderr
//     captured up to Limits.Output each, with a truncation marker.
//
// The limits that must be set from inside the sandbox (rlimits, seccomp,
// Landlock, no_new_privs) are applied by an init shim: warden's own
// executable, bound read-only at /.warden/warden-sandbox-init and
// recognised by the init function of package shim (which this package
// imports). It is the sandbox's pid 1 (bubblewrap --as-pid-1): not
// dumpable, under the seccomp filter, it reaps orphans and runs the shim
// again as its child, which applies them all and then execs the command. Any binary that
// links this package (warden itself, a test binary) can therefore serve as
// its own shim.
//
// When warden runs as root, bubblewrap is started as uid/gid 65534
// (nobody): the kernel does not enforce RLIMIT_NPROC for the host's root
// user, so a sandbox running as root could fork without bound.
//
// Network: none by default (the namespace has only lo). With Spec.Egress
// set, the sandbox's only way out is warden's filtering HTTP CONNECT proxy
// (package egress): a per-run proxy listens on a unix socket bound into the
// sandbox, and the shim forwards 127.0.0.1:3128 inside the namespace to
// it; the command gets HTTPS_PROXY, HTTP_PROXY and ALL_PROXY (and their
// lower-case forms) pointing there.
//
// # API
//
// Run runs a command to completion and returns its Result. Start starts a
// long-running command (a stdio MCP server) with pipes to its stdin and
// stdout; Process.Wait returns its Result once it has ended, Process.Kill
// ends the whole tree. Both take the same Spec. This API is used by the
// exec connector (internal/connector/exec) and the mcp connector.
//
// What does not live here: config parsing (internal/config), secrets
// (the caller resolves them and puts them in Spec.Env), redaction (the
// caller passes Spec.Redact), and audit records (the caller's
// egress.Options.Audit).
package sandbox

import (
	"errors"
	"io"
	"time"

	"github.com/warden-dev/warden/internal/sandbox/egress"
	"github.com/warden-dev/warden/internal/sandbox/layout"
)

// ErrNoBubblewrap is returned when bwrap is not on PATH. warden never falls
// back to running a command unsandboxed.
var ErrNoBubblewrap = errors.New("the sandbox needs bubblewrap (bwrap) on PATH; install the bubblewrap package (make deps does)")

// DefaultBinds are the host paths bound read-only into the sandbox when
// Spec.Binds is empty: enough for dynamically linked programs, shells and
// TLS clients. A path missing on the host is skipped; a symlink (such as
// /lib → usr/lib) is recreated as the same symlink.
var DefaultBinds = []string{"/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin",
	"/etc/ssl", "/etc/ca-certificates", "/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
	"/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/mime.types"}

// WorkMount is where the work directory appears inside the sandbox, and
// the command's working directory unless Spec.Dir says otherwise.
const WorkMount = layout.WorkMount

// ProxyPort is the loopback port inside the sandbox's network namespace
// where the egress proxy is reachable.
const ProxyPort = 3128

// Limits bound one sandboxed command. Zero fields take the value of
// DefaultLimits; a negative value means "no limit".
type Limits struct {
	CPU          time.Duration // CPU time (RLIMIT_CPU, whole seconds, rounded up)
	Memory       int64         // bytes of resident anonymous memory of the whole tree (watchdog)
	AddressSpace int64         // bytes of virtual memory per process (RLIMIT_AS); default none
	Processes    int64         // processes and threads (RLIMIT_NPROC)
	FileSize     int64         // bytes per written file (RLIMIT_FSIZE)
	OpenFiles    int64         // open file descriptors per process (RLIMIT_NOFILE)
	Timeout      time.Duration // wall clock; the whole tree is killed after it
	Output       int64         // bytes kept of stdout and of stderr, each
	Tmp          int64         // size of the private /tmp (tmpfs)
}

// DefaultLimits are the limits of a Spec that sets none. Start ignores the
// default Timeout and CPU: a long-running server lives until killed, unless
// its Spec sets them.
var DefaultLimits = Limits{
	CPU:       30 * time.Second,
	Memory:    512 << 20,
	Processes: 128,
	FileSize:  64 << 20,
	OpenFiles: 256,
	Timeout:   30 * time.Second,
	Output:    1 << 20,
	Tmp:       64 << 20,
}

// WithDefaults returns l with every zero field taken from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits
	set := func(v *int64, def int64) {
		if *v == 0 {
			*v = def
		}
	}
	if l.CPU == 0 {
		l.CPU = d.CPU
	}
	if l.Timeout == 0 {
		l.Timeout = d.Timeout
	}
	set(&l.Memory, d.Memory)
	set(&l.Processes, d.Processes)
	set(&l.FileSize, d.FileSize)
	set(&l.OpenFiles, d.OpenFiles)
	set(&l.Output, d.Output)
	set(&l.Tmp, d.Tmp)
	// Output is always captured up to a cap, and /tmp always has a size.
	if l.Output < 0 {
		l.Output = d.Output
	}
	if l.Tmp < 0 {
		l.Tmp = d.Tmp
	}
	return l
}

// Spec is one command to run in a sandbox.
type Spec struct {
	// Argv is the command and its arguments; Argv[0] is looked up on the
	// sandbox's PATH (/usr/local/bin:/usr/bin:/bin) unless it has a slash.
	Argv []string
	// Env is the command's whole environment (nothing is inherited from
	// warden). Values may be secrets: they are never put on a command line.
	Env map[string]string
	// Dir is the working directory inside the sandbox; default WorkMount.
	// Only tests set it; no connector does.
	Dir string
	// Binds are host paths bound read-only at the same place; empty:
	// DefaultBinds.
	Binds []string
	// WorkDir is a host directory to mount writable at /work and keep
	// afterwards. Empty: a fresh directory is made under os.TempDir() for
	// this run and removed after it, unless KeepWorkDir. Only tests set
	// it; connectors use Seed and KeepWorkDir.
	WorkDir string
	// Seed is a host directory whose contents are copied into a fresh work
	// directory before the command starts.
	Seed string
	// KeepWorkDir keeps a fresh work directory after the run
	// (Result.WorkDir names it).
	KeepWorkDir bool
	Limits      Limits
	// Egress, when set, gives the sandbox a way out through a filtering
	// CONNECT proxy that allows only its hosts. Nil: no network.
	Egress *egress.Options
	// Stdin feeds the command's stdin in Run; nil: empty. Start ignores it
	// (Process.Stdin is a pipe). Only tests set it.
	Stdin io.Reader
	// Redact, when set, scrubs captured output before it is cut to
	// Limits.Output, so that a secret straddling the cut cannot leave a
	// prefix behind.
	Redact func([]byte) []byte
}

// Kill reasons in Result.KillReason.
const (
	KilledTimeout   = "timeout"   // the wall-clock limit
	KilledCancelled = "cancelled" // the caller's context ended (kill switch, shutdown)
	KilledCPU       = "cpu"       // RLIMIT_CPU
	KilledMemory    = "memory"    // the memory watchdog
	KilledFileSize  = "file_size" // RLIMIT_FSIZE (SIGXFSZ)
	KilledSignal    = "signal"    // another signal from inside the sandbox
	KilledByCaller  = "killed"    // Process.Kill
	KilledSeccomp   = "seccomp"   // the seccomp filter killed it (SIGSYS: a foreign-architecture syscall)
)

// Result is how a sandboxed command ended.
type Result struct {
	// ExitCode is the command's exit status; 128+N when signal N ended it
	// (as a shell reports it); -1 when it never ran.
	ExitCode int
	Stdout   []byte // at most Limits.Output bytes, plus the marker when truncated
	Stderr   []byte
	// Truncated says stdout or stderr was cut; the cut stream ends with
	// TruncationMarker.
	Truncated  bool
	Duration   time.Duration
	Killed     bool
	KillReason string
	// CPUTime is the user plus system time of the whole tree.
	CPUTime time.Duration
	// Landlock is the Landlock ABI version the shim actually applied
	// inside; 0: none was (the kernel has none), and only the namespaces,
	// binds and seccomp filter apply.
	Landlock int
	// WorkDir is the host path of a kept work directory; empty otherwise.
	// For operators only: never show it to an agent.
	WorkDir string
	// Egress lists every connection attempt through the egress proxy.
	Egress []egress.Attempt
}

// TruncationMarker ends a stream cut at Limits.Output bytes.
const TruncationMarker = "\n[warden: output truncated]\n"
