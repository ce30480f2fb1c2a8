package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; Linux fixes
// it at 100 on every architecture Go supports here.
const clockTicks = 100

// cpuTicks returns utime+stime of a process in clock ticks (lab.ProcCPU).
func cpuTicks(pid int) (int64, error) {
	d, err := lab.ProcCPU(pid)
	return int64(d / (time.Second / clockTicks)), err
}

// rssKiB returns a process's resident set (VmRSS) in KiB.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
