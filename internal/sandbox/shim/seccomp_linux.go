//go:build linux

package shim

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Classic BPF opcodes used by the filter.
const (
	bpfLdW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeqK = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJgeK = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfJset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	bpfRetK = unix.BPF_RET | unix.BPF_K
)

// Offsets into struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArg0 = 16 // args[0], low 32 bits on little-endian
)

// cloneNamespaces are the clone flags that would create namespaces; clone
// with any of them is refused like unshare.
const cloneNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// filter assembles the seccomp program: on another architecture (or the
// x32 ABI) the process is killed; a denied syscall fails with EPERM; clone3
// fails with ENOSYS, since its flags cannot be inspected, so that libc falls
// back to clone, whose flags are checked; everything else is allowed.
func filter() []unix.SockFilter {
	eperm := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	var f []unix.SockFilter
	add := func(code uint16, jt, jf uint8, k uint32) {
		f = append(f, unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k})
	}
	add(bpfLdW, 0, 0, offArch)
	add(bpfJeqK, 1, 0, auditArch)
	add(bpfRetK, 0, 0, unix.SECCOMP_RET_KILL_PROCESS)
	add(bpfLdW, 0, 0, offNr)
	if x32Bit != 0 {
		add(bpfJgeK, 0, 1, x32Bit)
		add(bpfRetK, 0, 0, unix.SECCOMP_RET_KILL_PROCESS)
	}
	for _, nr := range deniedSyscalls {
		add(bpfJeqK, 0, 1, uint32(nr))
		add(bpfRetK, 0, 0, eperm)
	}
	add(bpfJeqK, 0, 1, uint32(unix.SYS_CLONE3))
	add(bpfRetK, 0, 0, uint32(unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)))
	add(bpfJeqK, 0, 4, uint32(unix.SYS_CLONE))
	add(bpfLdW, 0, 0, cloneFlagsOffset)
	add(bpfJset, 0, 1, cloneNamespaces)
	add(bpfRetK, 0, 0, eperm)
	add(bpfRetK, 0, 0, unix.SECCOMP_RET_ALLOW)
	add(bpfRetK, 0, 0, unix.SECCOMP_RET_ALLOW)
	return f
}

// loadSeccomp installs the filter on every thread of the process (TSYNC);
// no_new_privs must be set first.
func loadSeccomp() error {
	f := filter()
	prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, 1 /* SECCOMP_SET_MODE_FILTER */, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	return nil
}

// FilterBytes returns the seccomp program in the kernel's binary layout
// (struct sock_filter[]), for inspection and tests.
func FilterBytes() []byte {
	var out []byte
	for _, i := range filter() {
		out = binary.LittleEndian.AppendUint16(out, i.Code)
		out = append(out, i.Jt, i.Jf)
		out = binary.LittleEndian.AppendUint32(out, i.K)
	}
	return out
}
