package lake

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
	"github.com/quantapix/hqd/internal/lake/jobexec"
)

// TestMain lets the test binary play hqd's job helper.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "job-exec" {
		os.Exit(jobexec.Main(os.Args[2:]))
	}
	code := m.Run()
	itest.CleanupStandin()
	os.Exit(code)
}

func isolation(t *testing.T) *Isolation {
	t.Helper()
	iso := DetectIsolation(false)
	t.Logf("job isolation: %s (%s)", iso.Mode, iso.Detail)
	if !iso.Confined() {
		t.Fatalf("this machine has no usable cgroups: %s", iso.Detail)
	}
	return iso
}

type captured struct {
	mu    sync.Mutex
	lines []string
}

func (c *captured) add(stream, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, stream+": "+text)
}

// pids are the processes the stand-in said it started.
func (c *captured) pids() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for _, l := range c.lines {
		if rest, ok := strings.CutPrefix(l, "stderr: standin: pid "); ok {
			if pid, err := strconv.Atoi(rest); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// noLeftovers fails t for every process of the stand-in still running,
// and kills it.
func noLeftovers(t *testing.T, bin string) {
	t.Helper()
	for _, pid := range itest.Processes(bin) {
		t.Errorf("process %d of the job is still running", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func runner(t *testing.T, iso *Isolation, lim Limits) *Runner {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	_ = self
	bin := itest.Standin(t)
	return &Runner{Bin: bin, Self: itest.JobHelper(t), Iso: iso, Limits: lim, Box: NewSandboxing(bin, NewUIDPool(testUIDs, 65536))}
}

// testUIDs are the host uids the tests' runs get.
const testUIDs = 1_000_000_000

func TestRunLimits(t *testing.T) {
	iso := isolation(t)
	dir := itest.LakeProject(t, map[string]map[string]any{
		"Proving.Basic": {"transcript": "01-clean-build"},
		"Standin.Hog":   {"action": "memory"},
		"Standin.Bomb":  {"action": "fork"},
		"Standin.Loop":  {"action": "loop"},
		"Standin.Deaf":  {"action": "ignore-term"},
		"Standin.Away":  {"action": "escape"},
		"Standin.Long":  {"action": "huge-line"},
		"Standin.Bad":   {"action": "bad-utf8"},
		"Standin.Crash": {"action": "crash"},
	})
	lim := Limits{Memory: 64 << 20, Pids: 32, CPU: 1, Timeout: 2 * time.Second}
	for _, tc := range []struct {
		target string
		limit  string
		code   int // -1: any
		check  func(t *testing.T, c *captured)
	}{
		{"Proving.Basic", "", 0, func(t *testing.T, c *captured) {
			if len(c.lines) < 10 || !strings.Contains(strings.Join(c.lines, "\n"), "stdout: Build completed successfully (10 jobs).") {
				t.Errorf("replayed output: %v", c.lines)
			}
		}},
		{"Standin.Hog", "memory", -1, nil},
		{"Standin.Bomb", "pids", -1, nil},
		{"Standin.Loop", "timeout", 128 + 9, nil},
		{"Standin.Deaf", "timeout", 128 + 9, nil},
		{"Standin.Away", "timeout", 128 + 9, func(t *testing.T, c *captured) {
			if len(c.pids()) < 3 {
				t.Errorf("the escaping scenario started %v", c.pids())
			}
		}},
		{"Standin.Long", "", 0, func(t *testing.T, c *captured) {
			var longest int
			for _, l := range c.lines {
				longest = max(longest, len(l))
			}
			if longest > MaxLine+64 || !strings.Contains(strings.Join(c.lines, "\n"), "stdout: after the long line") {
				t.Errorf("longest line %d bytes; lines after it: %v", longest, len(c.lines))
			}
		}},
		{"Standin.Bad", "", 0, nil},
		{"Standin.Crash", "", 128 + 9, nil},
	} {
		t.Run(tc.target, func(t *testing.T) {
			var c captured
			out, err := runner(t, iso, lim).Run(context.Background(), Spec{Dir: dir, Args: []string{"build", tc.target}}, c.add)
			if err != nil {
				t.Fatal(err)
			}
			if out.Limit != tc.limit || out.ExitCode == nil || (tc.code >= 0 && *out.ExitCode != tc.code) {
				t.Errorf("outcome: limit %q exit %v, want limit %q exit %d", out.Limit, deref(out.ExitCode), tc.limit, tc.code)
			}
			noLeftovers(t, itest.Standin(t))
			if tc.check != nil {
				tc.check(t, &c)
			}
		})
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestRunCancel(t *testing.T) {
	iso := isolation(t)
	dir := itest.LakeProject(t, map[string]map[string]any{"Standin.Deaf": {"action": "ignore-term"}})
	ctx, cancel := context.WithCancel(context.Background())
	var c captured
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	out, err := runner(t, iso, Limits{Memory: 64 << 20, Pids: 32, CPU: 1, Timeout: time.Minute}).Run(ctx, Spec{Dir: dir, Args: []string{"build", "Standin.Deaf"}}, c.add)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Cancelled || out.Limit != "" || out.Duration > 10*time.Second {
		t.Errorf("cancelled run: %+v", out)
	}
	noLeftovers(t, itest.Standin(t))
}

func TestNoIsolationRefuses(t *testing.T) {
	r := &Runner{Bin: "/bin/true", Self: "/bin/true", Iso: &Isolation{Mode: IsolationNone}}
	if _, err := r.Run(context.Background(), Spec{}, func(string, string) {}); err != ErrNoIsolation {
		t.Errorf("run without isolation: %v", err)
	}
}

// TestRunUnconfined: HQD_JOBS_UNCONFINED=1 runs without a sandbox still
// work, without cgroups the wall clock still kills the process group, and
// with cgroups their limits hold.
func TestRunUnconfined(t *testing.T) {
	dir := itest.LakeProject(t, map[string]map[string]any{"Proving.Basic": {"transcript": "01-clean-build"}, "Standin.Loop": {"action": "loop"},
		"Standin.Bomb": {"action": "fork"}, "lean:default": {"transcript": "05-env-lean-errors"}})
	unsandboxed := func(iso *Isolation, lim Limits) *Runner {
		r := runner(t, iso, lim)
		r.Box, r.Unconfined, r.ScratchDir = nil, true, t.TempDir()
		return r
	}
	r := unsandboxed(&Isolation{Mode: IsolationUnconfined}, Limits{Memory: 1 << 30, Pids: 64, CPU: 1, Timeout: time.Second})
	var c captured
	out, err := r.Run(context.Background(), Spec{Dir: dir, Args: []string{"build", "Proving.Basic"}}, c.add)
	if err != nil || out.ExitCode == nil || *out.ExitCode != 0 || out.Limit != "" {
		t.Fatalf("unconfined replay: %+v %v", out, err)
	}
	c = captured{}
	out, err = r.Run(context.Background(), Spec{Dir: dir, Args: []string{"env", "lean", "{source}"}, Source: []byte("-- a check\n")}, c.add)
	if err != nil || out.ExitCode == nil || len(c.lines) == 0 {
		t.Fatalf("unconfined source check: %+v %v %v", out, err, c.lines)
	}
	c = captured{}
	out, err = r.Run(context.Background(), Spec{Dir: dir, Args: []string{"build", "Standin.Loop"}}, c.add)
	if err != nil || out.Limit != "timeout" {
		t.Fatalf("unconfined loop: %+v %v", out, err)
	}
	// With cgroups but no sandbox, the helper joins them before lake runs.
	r = unsandboxed(isolation(t), Limits{Memory: 64 << 20, Pids: 32, CPU: 1, Timeout: 10 * time.Second})
	if out, err := r.Run(context.Background(), Spec{Dir: dir, Args: []string{"build", "Standin.Bomb"}}, (&captured{}).add); err != nil || out.Limit != "pids" {
		t.Errorf("unsandboxed fork bomb: %+v %v", out, err)
	}
	noLeftovers(t, itest.Standin(t))
}

// TestSweep: the cgroups of a daemon that is gone are removed, with the
// process left in them; those of a running daemon (this test) are not.
func TestSweep(t *testing.T) {
	iso := isolation(t)
	lim := Limits{Memory: 64 << 20, Pids: 8, CPU: 1}
	dead, err := iso.newGroup(runPrefix+"99999999.1-"+strconv.Itoa(os.Getpid()), lim) // no such pid
	if err != nil {
		t.Fatal(err)
	}
	mine, err := iso.newGroup(runPrefix+daemonOwner+"-sweeptest", lim)
	if err != nil {
		t.Fatal(err)
	}
	defer mine.remove()
	orphan := exec.Command("sleep", "300")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range dead.procsFiles() {
		if err := writeFile(f, strconv.Itoa(orphan.Process.Pid)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := iso.Sweep()
	if err != nil || n < 1 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if err := orphan.Wait(); err == nil {
		t.Error("the orphan in the dead daemon's cgroup was not killed")
	}
	for _, d := range dead.dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s survived the sweep", d)
		}
	}
	for _, d := range mine.dirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("a running daemon's cgroup was swept: %v", err)
		}
	}
}
