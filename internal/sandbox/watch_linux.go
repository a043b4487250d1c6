//go:build linux

package sandbox

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// memoryPoll is how often the memory watchdog looks at the tree.
const memoryPoll = 50 * time.Millisecond

// watchMemory kills the sandbox when the anonymous and shared resident
// memory of its
// whole process tree exceeds Limits.Memory. RLIMIT_AS bounds each process's
// address space; this bounds what the tree actually uses, which a command
// forking many processes each under RLIMIT_AS would otherwise multiply.
func (r *runner) watchMemory() {
	if r.limits.Memory <= 0 {
		return
	}
	t := time.NewTicker(memoryPoll)
	defer t.Stop()
	page := int64(os.Getpagesize())
	for {
		select {
		case <-r.watch:
			return
		case <-t.C:
		}
		if r.cmd.Process == nil {
			continue
		}
		if treeAnon(r.cmd.Process.Pid, page, 0) > r.limits.Memory {
			r.kill(KilledMemory)
			return
		}
	}
}

// treeAnon sums the anonymous and shared-memory resident memory (RssAnon
// + RssShmem of /proc/PID/status, in bytes) over pid and its descendants.
// Shared memory counts: a MAP_SHARED anonymous mapping or a memfd is as
// real as a private one. A page shared by several processes of the tree is
// counted once for each, which errs on the safe side.
func treeAnon(pid int, page int64, depth int) int64 {
	if depth > 64 {
		return 0
	}
	var sum int64
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
		sum += statusKB(b, "RssAnon:") + statusKB(b, "RssShmem:")
	}
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return sum
	}
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(b)) {
			if cp, err := strconv.Atoi(c); err == nil {
				sum += treeAnon(cp, page, depth+1)
			}
		}
	}
	return sum
}

// statusKB returns the value of a "Key:   N kB" line of /proc/PID/status,
// in bytes.
func statusKB(b []byte, key string) int64 {
	i := bytes.Index(b, []byte("\n"+key))
	if i < 0 {
		return 0
	}
	line := b[i+1+len(key):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	f := strings.Fields(string(line))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n << 10
}
