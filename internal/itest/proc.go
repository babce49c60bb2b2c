package itest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// ResidentKB is a process's resident memory (VmRSS) in KB.
func ResidentKB(t testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// CPUTicks returns pid's CPU time and the machine's busy and total time,
// in clock ticks (1/100 s).
func CPUTicks(t testing.TB, pid int) (proc, busy, total int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:])) // after the command name
	ut, _ := strconv.ParseInt(f[11], 10, 64)                                 // utime, field 14
	st, _ := strconv.ParseInt(f[12], 10, 64)                                 // stime, field 15
	b, err = os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle and iowait
			busy += n
		}
	}
	return ut + st, busy, total
}

// Processes are the live processes (zombies aside) of the program bin on
// this host, in whatever PID namespace: those whose argv[0] is bin. (A
// sandboxed job's own pids mean nothing outside its namespace.)
func Processes(bin string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.HasPrefix(string(cmd), bin+"\x00") {
			continue
		}
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		out = append(out, pid)
	}
	return out
}
