// Package layout names the sandbox's own places: the trees bubblewrap
// makes inside every sandbox (its /proc, /dev, /tmp, the work directory and
// warden's files), which no bind from the host may cover. It is pure, so
// that config validation and the sandbox runner share one list.
package layout

import "strings"

// WorkMount is where the work directory appears inside the sandbox.
const WorkMount = "/work"

// reserved are the sandbox's own trees, besides / itself.
var reserved = []string{"/proc", "/dev", "/tmp", WorkMount, "/.warden"}

// ReservedBind names the sandbox's own tree that p, a clean absolute path,
// is or lies in ("/" for / itself); "" when p may be bound.
func ReservedBind(p string) string {
	if p == "/" {
		return "/"
	}
	for _, r := range reserved {
		if p == r || strings.HasPrefix(p, r+"/") {
			return r
		}
	}
	return ""
}
