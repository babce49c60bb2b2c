// Package jobexec is a job's helper: the process that joins the job's
// cgroups, loses its privileges and only then becomes lake, so that lake
// never runs a single instruction outside its limits (cgroup v1 has no way
// to start a process inside a cgroup). It is run as "hqd job-exec" or, much
// faster to start, as the small hqd-job-exec that hqd embeds (see
// lake.Helper); so it imports nothing heavier than flag and syscall.
package jobexec

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Main is the job helper, run with the arguments after "job-exec". It
// returns only on failure.
func Main(args []string) int {
	fs := flag.NewFlagSet("job-exec", flag.ContinueOnError)
	var procs multi
	fs.Var(&procs, "procs", "cgroup.procs file to join")
	uid := fs.Int("uid", -1, "user to become")
	gid := fs.Int("gid", -1, "group to become")
	rlimitAS := fs.Int64("rlimit-as", 0, "address-space limit (unconfined runs)")
	check := fs.Bool("check", false, "exit 0 at once: the daemon's test that this helper runs here")
	err := fs.Parse(args)
	if err == nil && *check {
		return 0
	}
	if err != nil || fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "hqd job-exec: usage: job-exec [-procs F]... [-uid N -gid N] -- BIN ARGS...")
		return 2
	}
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		if err := os.WriteFile(p, []byte(self), 0); err != nil {
			fmt.Fprintf(os.Stderr, "hqd job-exec: joining %s: %v\n", p, err)
			return 125
		}
	}
	if *rlimitAS > 0 {
		_ = syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: uint64(*rlimitAS), Max: uint64(*rlimitAS)}) // best effort: unconfined runs are best effort
	}
	if *uid >= 0 {
		if err := syscall.Setgroups(nil); err != nil {
			fmt.Fprintf(os.Stderr, "hqd job-exec: dropping groups: %v\n", err)
			return 125
		}
		if err := syscall.Setgid(*gid); err != nil {
			fmt.Fprintf(os.Stderr, "hqd job-exec: setgid %d: %v\n", *gid, err)
			return 125
		}
		if err := syscall.Setuid(*uid); err != nil {
			fmt.Fprintf(os.Stderr, "hqd job-exec: setuid %d: %v\n", *uid, err)
			return 125
		}
	}
	bin := fs.Arg(0)
	err = syscall.Exec(bin, fs.Args(), os.Environ())
	fmt.Fprintf(os.Stderr, "hqd job-exec: running %s: %v\n", bin, err)
	return 127
}

type multi []string

func (m *multi) String() string     { return fmt.Sprint(*m) }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }
