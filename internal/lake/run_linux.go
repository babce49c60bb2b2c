package lake

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
	Dir   string   // working directory: the Lake project
	Args  []string // after the binary: "build", "Proving.Basic"; "{source}" stands for Source's path
	Stdin []byte
	// Source, when set, is written to the run's scratch directory as
	// Source.lean (the file of `lake env lean`).
	Source []byte
}

// Outcome is how a run ended.
type Outcome struct {
	ExitCode  *int   // the process's code, 128+signal when a signal ended it; nil when none ran
	Limit     string // "", "timeout", "memory" or "pids": the first limit observed
	Cancelled bool
	Duration  time.Duration
}

// Runner starts lake under the isolation, the sandbox and the limits it
// was given.
type Runner struct {
	Bin    string // HQD_LAKE_BIN, an absolute path
	Self   string // the job helper (see Helper and package jobexec)
	Iso    *Isolation
	Box    *Sandboxing // nil: runs are not sandboxed, which only Unconfined allows
	Limits Limits
	// Unconfined (HQD_JOBS_UNCONFINED=1) lets runs go without a sandbox,
	// and without cgroups where none are usable.
	Unconfined bool
	// ScratchDir holds the scratch directories of runs that are not
	// sandboxed (a sandboxed run's scratch is its own tmpfs).
	ScratchDir string
}

// ErrNoIsolation refuses a run when no cgroups are usable and unconfined
// runs were not allowed.
var ErrNoIsolation = errors.New("job isolation is not available")

// ScratchPath is the run's scratch directory inside its sandbox: HOME,
// TMPDIR and the Source.lean of a check. The same path for every run, so
// nothing of the host shows in a diagnostic.
const ScratchPath = "/job"

// env is the whole environment a run gets: nothing of the daemon's.
func (r *Runner) env(scratch string) []string {
	path := "/usr/local/bin:/usr/bin:/bin"
	if dir := filepath.Dir(r.Bin); dir != "" {
		path = dir + ":" + path // lake finds its toolchain beside it
	}
	env := []string{"PATH=" + path, "HOME=" + scratch, "TMPDIR=" + scratch, "LANG=C.UTF-8", "LC_ALL=C.UTF-8"}
	if elan := elanHome(r.Bin); elan != "" {
		env = append(env, "ELAN_HOME="+elan) // elan's proxies find their toolchains there, not under HOME
	}
	return env
}

// Run runs spec and calls line for every output line, in order per stream,
// from two goroutines (stdout and stderr). It returns when the process and
// every descendant are gone. err is set only when nothing could be started.
func (r *Runner) Run(ctx context.Context, spec Spec, line func(stream, text string)) (Outcome, error) {
	return readOutput(line, func(stdout, stderr *os.File) (Outcome, error) { return r.RunFiles(ctx, spec, stdout, stderr) })
}

// readOutput gives run the write ends of two pipes (which run closes once
// the job has them) and calls line for every line read from them.
func readOutput(line func(stream, text string), run func(stdout, stderr *os.File) (Outcome, error)) (Outcome, error) {
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
	var readers sync.WaitGroup
	for _, p := range []struct {
		name string
		f    *os.File
	}{{"stdout", outR}, {"stderr", errR}} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			readLines(p.f, func(s string) { line(p.name, s) })
		}()
	}
	out, err := run(outW, errW)
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
	outR.Close()
	errR.Close()
	return out, err
}

// RunFiles runs spec with its output going to stdout and stderr, which it
// closes once the job has them (or it failed to start). It returns when
// the process and every descendant are gone. err is set only when nothing
// could be started.
func (r *Runner) RunFiles(ctx context.Context, spec Spec, stdout, stderr *os.File) (Outcome, error) {
	defer stdout.Close()
	defer stderr.Close()
	if r.Iso == nil || r.Iso.Mode == IsolationNone || (r.Box == nil && !r.Unconfined) {
		return Outcome{}, ErrNoIsolation
	}
	// Pdeathsig fires when the thread that forked the child exits, not the
	// process: keep this goroutine on its thread until the child is reaped.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var g *group
	if r.Iso.Confined() {
		var err error
		if g, err = r.Iso.newGroup(newRunName(), r.Limits); err != nil {
			return Outcome{}, err
		}
		defer g.remove()
	}
	var st *started
	var err error
	if r.Box != nil {
		st, err = r.startSandboxed(spec, g, stdout, stderr)
	} else {
		st, err = r.startUnconfined(spec, g, stdout, stderr)
	}
	stdout.Close()
	stderr.Close()
	if err != nil {
		return Outcome{}, err
	}
	defer st.release()
	return supervise(ctx, st.cmd, g, r.Limits.Timeout, st.start), nil
}

// started is a run's process, once it runs.
type started struct {
	cmd     *exec.Cmd
	start   time.Time
	release func() // gives back what the run held (its uid, its scratch dir)
}

// startUnconfined starts lake through the helper, which only sets an
// address-space limit: HQD_JOBS_UNCONFINED=1, no sandbox.
func (r *Runner) startUnconfined(spec Spec, g *group, stdout, stderr *os.File) (*started, error) {
	scratch, err := os.MkdirTemp(r.ScratchDir, "run-")
	if err != nil {
		return nil, fmt.Errorf("making the run's scratch directory: %w", err)
	}
	release := func() { os.RemoveAll(scratch) }
	src := filepath.Join(scratch, "Source.lean")
	if spec.Source != nil {
		if err := os.WriteFile(src, spec.Source, 0o644); err != nil {
			release()
			return nil, err
		}
	}
	args := []string{"job-exec"}
	if g == nil {
		args = append(args, "-rlimit-as", strconv.FormatInt(r.Limits.Memory, 10))
	} else {
		for _, f := range g.procsFiles() {
			args = append(args, "-procs", f) // the helper joins before it becomes lake
		}
	}
	args = append(append(args, "--", r.Bin), withSource(spec.Args, src)...)
	cmd := exec.Command(r.Self, args...)
	cmd.Dir = spec.Dir
	cmd.Env = r.env(scratch)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if spec.Stdin != nil {
		cmd.Stdin = bytes.NewReader(spec.Stdin)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	st := &started{cmd: cmd, start: time.Now(), release: release}
	if err := cmd.Start(); err != nil {
		release()
		return nil, fmt.Errorf("starting %s: %w", r.Bin, err)
	}
	return st, nil
}

func withSource(args []string, src string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "{source}" {
			a = src
		}
		out[i] = a
	}
	return out
}

// supervise waits for the run, killing it on a limit, the wall clock or
// ctx, and sweeps whatever it left behind.
func supervise(ctx context.Context, cmd *exec.Cmd, g *group, timeout time.Duration, start time.Time) Outcome {
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
	exited := make(chan struct{})
	go func() {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
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
			case <-timer.C:
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
	} else {
		// Unconfined: the process group is all there is to sweep. (With a
		// cgroup it is already empty, and the group id may be reused.)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	mu.Lock()
	defer mu.Unlock()
	out.Limit, out.Duration = limit, time.Since(start)
	if limit != "" {
		out.Cancelled = false
	}
	code := exitCode(cmd.ProcessState, werr)
	out.ExitCode = &code
	return out
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
