//go:build linux && amd64

package shim

import "golang.org/x/sys/unix"

const (
	auditArch = unix.AUDIT_ARCH_X86_64
	// x32Bit marks x32-ABI syscall numbers, which would bypass a filter
	// written for x86_64 numbers.
	x32Bit = 0x40000000
	// cloneFlagsOffset: clone's flags are its first argument on x86_64.
	cloneFlagsOffset = offArg0
)

// deniedSyscalls fail with EPERM inside the sandbox: the common list and
// x86's port I/O.
var deniedSyscalls = append(commonDeniedSyscalls[:len(commonDeniedSyscalls):len(commonDeniedSyscalls)],
	unix.SYS_IOPL, unix.SYS_IOPERM)
