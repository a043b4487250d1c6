//go:build linux

package sandbox

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// memoryPoll is how often the memory watchdog looks at the tree.
const memoryPoll = 50 * time.Millisecond

// watchMemory kills the sandbox when the anonymous resident memory of its
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

// treeAnon sums resident minus shared pages (in bytes) over pid and its
// descendants.
func treeAnon(pid int, page int64, depth int) int64 {
	if depth > 64 {
		return 0
	}
	var sum int64
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			res, _ := strconv.ParseInt(f[1], 10, 64)
			shared, _ := strconv.ParseInt(f[2], 10, 64)
			if res > shared {
				sum += (res - shared) * page
			}
		}
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
