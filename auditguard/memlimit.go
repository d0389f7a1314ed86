package auditguard

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryFiles hold the container's memory limit: cgroup v2's memory.max ("max" when there is
// none), then cgroup v1's limit_in_bytes (a value near 2^63 when there is none).
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// softLimitShare is the part of the container's memory limit given to the Go runtime as its soft
// limit: the rest is for what the runtime does not count (the binary's mapped pages, the kernel's
// socket buffers) and what it cannot free in time.
const softLimitShare = 0.9

// setMemoryLimit gives the Go runtime a soft memory limit of 90% of the container's, unless
// GOMEMLIMIT sets one or no container limit is found, and returns it (0: left alone).
//
// Without it the heap grows to twice what was live at the last collection before the next one,
// and the guard's large buffers, freed at different sizes, stay resident: a flood of 40 MiB lines
// on 32 connections took the process to 340 MiB RSS with the defaults, whose live worst case is
// under half that. With a soft limit the runtime collects and returns memory to the kernel as it
// nears the limit instead (250 MiB given: 271 MiB RSS at the peak, the binary's pages included),
// so the kernel's OOM killer is not what bounds the guard. MemoryBound leaves room for it.
func setMemoryLimit() int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit := cgroupMemoryLimit(cgroupMemoryFiles)
	if limit <= 0 {
		return 0
	}
	soft := int64(float64(limit) * softLimitShare)
	debug.SetMemoryLimit(soft)
	return soft
}

// cgroupMemoryLimit is the first limit found in files, or 0 when none is set.
func cgroupMemoryLimit(files []string) int64 {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0
		}
		return n
	}
	return 0
}
