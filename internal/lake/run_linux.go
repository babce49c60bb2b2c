package lake

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Limits bound one run (SPEC §6.3).
type Limits struct {
	Memory  int64         // bytes
	Pids    int64         // processes and threads
	CPU     float64       // cores
	Timeout time.Duration // wall clock
}

// Spec is one run of the lake binary.
type Spec struct {
	Dir     string   // working directory (the Lake project)
	Args    []string // after the binary: "build", "Proving.Basic"
	Stdin   []byte
	Scratch string // the run's own directory: HOME and TMPDIR
}

// Outcome is how a run ended.
type Outcome struct {
	ExitCode  *int   // the process's code, 128+signal when a signal ended it; nil when none ran
	Limit     string // "", "timeout", "memory" or "pids": the first limit observed
	Cancelled bool
	Duration  time.Duration
}

// Runner starts lake under the isolation and limits it was given.
type Runner struct {
	Bin       string // HQD_LAKE_BIN
	Self      string // the job helper (see Helper and package jobexec)
	Iso       *Isolation
	Limits    Limits
	UID, GID  int  // the unprivileged user runs get; -1 keeps the daemon's
	NoNetwork bool // a new, empty network namespace (needs CAP_SYS_ADMIN)
}

// ErrNoIsolation refuses a run when no cgroups are usable and unconfined
// runs were not allowed.
var ErrNoIsolation = errors.New("job isolation is not available")

// env is the whole environment a run gets: nothing of the daemon's.
func (r *Runner) env(scratch string) []string {
	path := "/usr/local/bin:/usr/bin:/bin"
	if dir := dirOf(r.Bin); dir != "" {
		path = dir + ":" + path // lake finds its toolchain beside it
	}
	return []string{"PATH=" + path, "HOME=" + scratch, "TMPDIR=" + scratch, "LANG=C.UTF-8", "LC_ALL=C.UTF-8"}
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return ""
}

// Run runs spec and calls line for every output line, in order per stream,
// from two goroutines (stdout and stderr). It returns when the process and
// every descendant are gone. err is set only when nothing could be started.
func (r *Runner) Run(ctx context.Context, spec Spec, line func(stream, text string)) (Outcome, error) {
	if r.Iso == nil || r.Iso.Mode == IsolationNone {
		return Outcome{}, ErrNoIsolation
	}
	// The daemon's identity and a random part: a cgroup left behind by an
	// earlier daemon is never taken over, and Sweep knows whose it is.
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails on Linux
	name := runPrefix + daemonOwner + "-" + hex.EncodeToString(rnd[:])
	// Pdeathsig fires when the thread that forked the child exits, not the
	// process: keep this goroutine on its thread until the child is reaped.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var g *group
	args := []string{"job-exec"}
	if r.Iso.Confined() {
		var err error
		if g, err = r.Iso.newGroup(name, r.Limits); err != nil {
			return Outcome{}, err
		}
		defer g.remove()
		for _, f := range g.procsFiles() {
			args = append(args, "-procs", f)
		}
	} else {
		args = append(args, "-rlimit-as", strconv.FormatInt(r.Limits.Memory, 10))
	}
	if r.UID >= 0 {
		args = append(args, "-uid", strconv.Itoa(r.UID), "-gid", strconv.Itoa(r.GID))
	}
	args = append(args, "--", r.Bin)
	args = append(args, spec.Args...)

	cmd := exec.Command(r.Self, args...)
	cmd.Dir = spec.Dir
	cmd.Env = r.env(spec.Scratch)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if r.NoNetwork {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET
	}
	if spec.Stdin != nil {
		cmd.Stdin = bytes.NewReader(spec.Stdin)
	}
	// Our own pipes: Wait must not wait for EOF, which a descendant that
	// escaped would hold off until the cgroup is swept.
	outR, outW, err := os.Pipe()
	if err != nil {
		return Outcome{}, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return Outcome{}, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	start := time.Now()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return Outcome{}, fmt.Errorf("starting %s: %w", r.Bin, err)
	}
	var readers sync.WaitGroup
	for _, p := range []struct {
		name string
		f    *os.File
	}{{"stdout", outR}, {"stderr", errR}} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			defer p.f.Close()
			readLines(p.f, func(s string) { line(p.name, s) })
		}()
	}

	pid := cmd.Process.Pid
	var (
		mu    sync.Mutex
		limit string
		out   Outcome
	)
	killed := make(chan struct{})
	var killOnce sync.Once
	kill := func(why string) {
		mu.Lock()
		if limit == "" && why != "cancel" {
			limit = why
		}
		if why == "cancel" && limit == "" {
			out.Cancelled = true
		}
		mu.Unlock()
		killOnce.Do(func() {
			_ = syscall.Kill(-pid, syscall.SIGKILL) // the process group, in case of no cgroup
			if g != nil {
				_ = g.kill() // every descendant, escaped or not
			}
			close(killed)
		})
	}
	// A kill must find the child in its cgroups: wait until it has joined
	// (the helper joins before it execs lake).
	if g != nil {
		deadline := time.Now().Add(2 * time.Second)
		for !g.contains(pid) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	exited := make(chan struct{})
	go func() {
		timeout := time.NewTimer(r.Limits.Timeout)
		defer timeout.Stop()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-exited:
				return
			case <-killed:
				return
			case <-ctx.Done():
				kill("cancel")
			case <-timeout.C:
				kill("timeout")
			case <-tick.C:
				if g != nil {
					if l := g.tripped(); l != "" {
						kill(l)
					}
				}
			}
		}
	}()
	werr := cmd.Wait()
	close(exited)
	// lake is gone; sweep whatever it left behind, so the pipes close.
	if g != nil {
		if t := g.tripped(); t != "" {
			mu.Lock()
			if limit == "" {
				limit = t
			}
			mu.Unlock()
		}
		_ = g.kill()
	}
	if g == nil {
		// Unconfined: the process group is all there is to sweep. (With a
		// cgroup it is already empty, and the group id may be reused.)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	readersDone := make(chan struct{})
	go func() { readers.Wait(); close(readersDone) }()
	select {
	case <-readersDone:
	case <-time.After(5 * time.Second):
		// Unconfined runs cannot sweep an escaped descendant; stop reading.
		outR.Close()
		errR.Close()
		<-readersDone
	}
	mu.Lock()
	defer mu.Unlock()
	out.Limit, out.Duration = limit, time.Since(start)
	if limit != "" {
		out.Cancelled = false
	}
	code := exitCode(cmd.ProcessState, werr)
	out.ExitCode = &code
	return out, nil
}

// exitCode is the process's code, 128+signal when a signal ended it.
func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// readLines calls fn for every line of r; a line longer than MaxLine is
// cut there and the rest of it dropped, so a job cannot make us hold a
// 10 MB line.
func readLines(r io.Reader, fn func(string)) {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	skipping := false
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			switch {
			case skipping:
			case err == bufio.ErrBufferFull:
				long = append(long, chunk...)
				if len(long) >= MaxLine {
					fn(string(long[:MaxLine]) + " …(line cut)")
					long, skipping = nil, true
				}
			default:
				full := append(long, bytes.TrimRight(chunk, "\n")...)
				if len(full) > MaxLine {
					full = append(full[:MaxLine:MaxLine], " …(line cut)"...)
				}
				fn(string(full))
				long = nil
			}
		}
		if err == nil && skipping && len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
			skipping = false
		}
		if err != nil && err != bufio.ErrBufferFull {
			if len(long) > 0 {
				fn(string(long))
			}
			return
		}
	}
}
