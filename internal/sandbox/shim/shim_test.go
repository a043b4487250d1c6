//go:build linux

package shim

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFilter: the program checks the architecture first, refuses every
// denied syscall, and ends allowing everything else. (The sandbox package's
// tests show the kernel enforcing it.)
func TestFilter(t *testing.T) {
	b := FilterBytes()
	if len(b)%8 != 0 {
		t.Fatalf("filter is %d bytes", len(b))
	}
	n := len(b) / 8
	ins := func(i int) (uint16, uint32) {
		return binary.LittleEndian.Uint16(b[i*8:]), binary.LittleEndian.Uint32(b[i*8+4:])
	}
	if code, k := ins(0); code != bpfLdW || k != offArch {
		t.Errorf("first instruction loads %d from %d, want the arch", code, k)
	}
	if _, k := ins(1); k != auditArch {
		t.Errorf("arch checked against %#x, want %#x", k, auditArch)
	}
	if code, k := ins(n - 1); code != bpfRetK || k != unix.SECCOMP_RET_ALLOW {
		t.Errorf("last instruction %d %#x, want RET ALLOW", code, k)
	}
	denied := map[uint32]bool{}
	for i := 0; i+1 < n; i++ {
		c1, k1 := ins(i)
		c2, k2 := ins(i + 1)
		if c1 == bpfJeqK && c2 == bpfRetK && k2 == unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM) {
			denied[k1] = true
		}
	}
	for _, nr := range []uintptr{unix.SYS_PTRACE, unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_KEYCTL, unix.SYS_BPF,
		unix.SYS_UNSHARE, unix.SYS_SETNS, unix.SYS_KEXEC_LOAD, unix.SYS_INIT_MODULE,
		unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV, unix.SYS_PIDFD_GETFD, unix.SYS_PROCESS_MADVISE, unix.SYS_KCMP} {
		if !denied[uint32(nr)] {
			t.Errorf("syscall %d is not denied", nr)
		}
	}
}
