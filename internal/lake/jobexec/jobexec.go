// Package jobexec is a job's helper: the process hqd starts for every run,
// which becomes the run's sandbox and its init. hqd starts it in the run's
// own user, PID, mount and network namespaces, puts it in the run's
// cgroups and only then tells it what to run (fd 3); it builds the run's
// root (sandbox.go), drops every privilege, starts lake and waits for it
// as the namespace's PID 1, so lake never runs a single instruction outside
// its limits or its sandbox. Unconfined runs (HQD_JOBS_UNCONFINED=1) use it
// only for an address-space limit. It is run as "hqd job-exec" or, much
// faster to start, as the small hqd-job-exec that hqd embeds (see
// lake.Helper); so it imports nothing heavier than flag and x/sys/unix.
package jobexec

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

type multi []string

func (m *multi) String() string     { return fmt.Sprint(*m) }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// Main is the job helper, run with the arguments after "job-exec". It
// returns the exit code.
func Main(args []string) int {
	fs := flag.NewFlagSet("job-exec", flag.ContinueOnError)
	sandbox := fs.Bool("sandbox", false, "build the sandbox described on fd 3 and run the job in it")
	var procs multi
	fs.Var(&procs, "procs", "cgroup.procs file to join first (unconfined runs)")
	rlimitAS := fs.Int64("rlimit-as", 0, "address-space limit (unconfined runs)")
	check := fs.Bool("check", false, "exit 0 at once: the daemon's test that this helper runs here")
	err := fs.Parse(args)
	switch {
	case err == nil && *check:
		return 0
	case err == nil && *sandbox:
		return RunSandbox()
	case err != nil || fs.NArg() == 0:
		fmt.Fprintln(os.Stderr, "hqd job-exec: usage: job-exec -sandbox | job-exec [-procs F]... [-rlimit-as N] -- BIN ARGS...")
		return 2
	}
	// Not one instruction of lake outside its cgroups: join them first.
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
	bin := fs.Arg(0)
	err = syscall.Exec(bin, fs.Args(), os.Environ())
	fmt.Fprintf(os.Stderr, "hqd job-exec: running %s: %v\n", bin, err)
	return 127
}
