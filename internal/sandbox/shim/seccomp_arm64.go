//go:build linux && arm64

package shim

import "golang.org/x/sys/unix"

const (
	auditArch        = unix.AUDIT_ARCH_AARCH64
	x32Bit           = 0
	cloneFlagsOffset = offArg0
)

// deniedSyscalls fail with EPERM inside the sandbox: arm64 has no
// syscall of its own to add to the common list.
var deniedSyscalls = commonDeniedSyscalls
