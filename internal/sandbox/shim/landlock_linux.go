//go:build linux

package shim

import (
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Landlock access rights by the ABI version that introduced them.
const (
	llFSv1 = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	llRefer    = unix.LANDLOCK_ACCESS_FS_REFER     // ABI 2
	llTruncate = unix.LANDLOCK_ACCESS_FS_TRUNCATE  // ABI 3
	llIoctlDev = unix.LANDLOCK_ACCESS_FS_IOCTL_DEV // ABI 5
	llRead     = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	// llFileRights are those that apply to a non-directory.
	llFileRights = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
		llTruncate | llIoctlDev
)

var (
	abiOnce sync.Once
	abi     int
)

// LandlockABI returns the kernel's Landlock ABI version; 0 when it has
// none (or it is disabled).
func LandlockABI() int {
	abiOnce.Do(func() {
		v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
		if errno == 0 {
			abi = int(v)
		}
	})
	return abi
}

// Landlock is what the shim restricts itself to: read and execute
// anywhere the mount namespace shows (only the binds exist), write only
// below RW, device files below Dev, and, with the ABI for it, TCP connect
// only to ConnectPort (0: none) and no TCP bind.
type Landlock struct {
	RW          []string `json:"rw"`
	Dev         []string `json:"dev"`
	ConnectPort int      `json:"connect_port,omitempty"`
	Off         bool     `json:"off,omitempty"` // tests only
}

type netPortAttr struct {
	allowed uint64
	port    uint64
}

// applyLandlock restricts the calling thread (and what it execs) as s
// says. It returns the ABI applied, 0 when the kernel has no Landlock.
func applyLandlock(s Landlock) (int, error) {
	v := LandlockABI()
	if v == 0 || s.Off {
		return 0, nil
	}
	fs := uint64(llFSv1)
	if v >= 2 {
		fs |= llRefer
	}
	if v >= 3 {
		fs |= llTruncate
	}
	if v >= 5 {
		fs |= llIoctlDev
	}
	attr := unix.LandlockRulesetAttr{Access_fs: fs}
	size := unsafe.Sizeof(uint64(0))
	if v >= 4 {
		attr.Access_net = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		size = 2 * unsafe.Sizeof(uint64(0))
	}
	if v >= 6 {
		attr.Scoped = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
		size = unsafe.Sizeof(attr)
	}
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return 0, fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	defer unix.Close(int(fd))
	rule := func(path string, access uint64) error {
		pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil // not in this sandbox: nothing to allow
		}
		defer unix.Close(pfd)
		var st unix.Stat_t
		if err := unix.Fstat(pfd, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			access &= llFileRights
		}
		pb := unix.LandlockPathBeneathAttr{Allowed_access: access & fs, Parent_fd: int32(pfd)}
		if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&pb)), 0, 0, 0); errno != 0 {
			return fmt.Errorf("landlock_add_rule %s: %w", path, errno)
		}
		return nil
	}
	if err := rule("/", llRead); err != nil {
		return 0, err
	}
	for _, p := range s.RW {
		if err := rule(p, fs); err != nil {
			return 0, err
		}
	}
	for _, p := range s.Dev {
		if err := rule(p, llRead|unix.LANDLOCK_ACCESS_FS_WRITE_FILE|llIoctlDev); err != nil {
			return 0, err
		}
	}
	if v >= 4 && s.ConnectPort > 0 {
		np := netPortAttr{allowed: unix.LANDLOCK_ACCESS_NET_CONNECT_TCP, port: uint64(s.ConnectPort)}
		if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, 2 /* LANDLOCK_RULE_NET_PORT */, uintptr(unsafe.Pointer(&np)), 0, 0, 0); errno != 0 {
			return 0, fmt.Errorf("landlock_add_rule net port: %w", errno)
		}
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return 0, fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return v, nil
}
