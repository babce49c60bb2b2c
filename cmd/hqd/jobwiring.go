package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/quantapix/hqd/internal/jobs"
	"github.com/quantapix/hqd/internal/lake"
)

// newJobs builds the verifier's job manager: isolation detected once, the
// lake runner, the result cache and the routes.
func (a *App) newJobs() error {
	cfg := a.cfg
	a.shutdown = make(chan struct{})
	bin := cfg.LakeBin
	if p, err := exec.LookPath(bin); err == nil {
		bin = p
	}
	if abs, err := filepath.Abs(bin); err == nil {
		bin = abs // the path lake has inside the sandbox too
	}
	var jobRunner jobs.Runner
	if st, err := os.Stat(cfg.JobSocket); err == nil && st.Mode()&os.ModeSocket != 0 {
		// Under systemd: the job units limit and sandbox the runs; hqd's
		// own cgroups do not matter (its unit has none to give).
		jobRunner = a.newUnitSandbox(bin)
	} else {
		a.iso = lake.DetectIsolation(cfg.JobsUnconfined)
		if n, err := a.iso.Sweep(); err != nil {
			a.log.Warn("removing the job cgroups of an earlier daemon", "removed", n, "err", err)
		} else if n > 0 {
			a.log.Warn("removed the job cgroups of an earlier daemon that did not stop cleanly", "removed", n)
		}
		a.log.Info("job isolation", "mode", a.iso.Mode, "detail", a.iso.Detail)
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding hqd's own executable for the job helper: %w", err)
		}
		helper, what := lake.Helper(self)
		a.log.Info("job helper", "helper", what)
		runner := &lake.Runner{
			Bin: bin, Self: helper, Iso: a.iso, Unconfined: cfg.JobsUnconfined, ScratchDir: os.TempDir(),
			Limits: lake.Limits{Memory: cfg.JobMemory, Pids: int64(cfg.JobPids), CPU: cfg.JobCPU, Timeout: cfg.JobTimeout},
		}
		a.sandbox = a.newSandbox(runner)
		jobRunner = runner
	}
	cache, err := lake.NewCache(cfg.LakeCacheDir)
	if err != nil {
		return fmt.Errorf("HQD_LAKE_CACHE_DIR: %w", err)
	}
	a.jobs = jobs.NewManager(jobs.Config{
		MaxRunning: cfg.JobsMaxRunning, MaxQueued: cfg.JobsMaxQueued, MaxPerUser: cfg.JobsMaxPerUser,
	}, jobRunner, cache, a.log, a.reg)
	a.jobRoutes = jobs.NewHandlers(jobs.HandlersConfig{Manager: a.jobs, Verifier: a.verifier, Revoked: a.sessions.Revocations.Revoked, VerifierDir: cfg.VerifierDir, LakeBin: bin,
		EvaluatorDir: cfg.EvaluatorDir, EvaluatorExe: cfg.EvaluatorExe,
		MaxSource: cfg.MaxSource, Shutdown: a.shutdown,
		Available:          a.jobsAvailable(bin, cfg.VerifierDir, "verifier", "HQD_VERIFIER_DIR"),
		EvaluatorAvailable: a.jobsAvailable(bin, cfg.EvaluatorDir, "evaluator", "HQD_EVALUATOR_DIR")}, a.reg)
	return nil
}

// Sandbox modes, as /readyz names them.
const (
	sandboxNamespaces = "namespaces" // hqd as root: user, PID, mount and network namespaces, a uid per run
	sandboxUnits      = "units"      // under systemd: the same, in an hqd-job@ unit per run with a user of its own
	sandboxNone       = "none"       // no sandbox can be made: jobs are refused
	sandboxOff        = "off"        // none, and HQD_JOBS_UNCONFINED=1 runs jobs anyway
)

// newSandbox decides how runs are sandboxed, tries it once with a trial
// run, and sets runner.Box. It answers the mode.
func (a *App) newSandbox(runner *lake.Runner) string {
	fail := func(why string, err error) string {
		a.sandboxWhy = why
		a.log.Warn("no job sandbox", "why", why, "err", err, "unconfined", a.cfg.JobsUnconfined)
		if a.cfg.JobsUnconfined {
			return sandboxOff
		}
		return sandboxNone
	}
	if a.iso.Mode == lake.IsolationNone {
		return fail("no cgroups for jobs on this host", nil)
	}
	if os.Geteuid() != 0 {
		return fail("hqd runs as an ordinary user: a run's own uid and namespaces need hqd as root", nil)
	}
	first, size, _ := parseUIDs(a.cfg.JobUIDs) // validated with the configuration
	runner.Box = lake.NewSandboxing(runner.Bin, lake.NewUIDPool(first, size))
	dir, done, err := a.trialProject()
	if err == nil {
		defer done()
		err = runner.CheckSandbox(dir)
	}
	if err != nil {
		runner.Box = nil
		return fail("a trial run could not be sandboxed on this host", err)
	}
	a.log.Info("job sandbox", "mode", sandboxNamespaces, "uids", a.cfg.JobUIDs, "readOnly", runner.Box.ReadOnly)
	return sandboxNamespaces
}

// trialProject is a project directory for a trial run: the verifier's or
// the evaluator's (which a job unit sees too: hqd's /tmp is its own), else
// an empty one of our own.
func (a *App) trialProject() (dir string, done func(), err error) {
	for _, d := range []string{a.cfg.VerifierDir, a.cfg.EvaluatorDir} {
		if st, err := os.Stat(d); d != "" && err == nil && st.IsDir() {
			return d, func() {}, nil
		}
	}
	dir, err = os.MkdirTemp("", "hqd-sandbox-check-")
	if err != nil {
		return "", nil, err
	}
	_ = os.Chmod(dir, 0o755)
	return dir, func() { os.RemoveAll(dir) }, nil
}

// newUnitSandbox runs jobs through the job socket (HQD_JOB_SOCKET): each
// in an hqd-job@ unit that systemd starts with a user of its own, which
// sandboxes and limits it. hqd itself then needs no privilege at all.
func (a *App) newUnitSandbox(bin string) jobs.Runner {
	cfg := a.cfg
	rm := &lake.Remote{Socket: cfg.JobSocket, Bin: bin,
		Limits: lake.Limits{Memory: cfg.JobMemory, Pids: int64(cfg.JobPids), CPU: cfg.JobCPU, Timeout: cfg.JobTimeout}}
	a.sandbox = sandboxUnits
	dir, done, err := a.trialProject()
	iso := ""
	if err == nil {
		defer done()
		iso, err = rm.Check(dir)
	}
	if err != nil {
		a.sandbox, a.sandboxWhy = sandboxNone, "a trial run in a job unit failed"
		a.log.Warn("no job sandbox", "why", a.sandboxWhy, "socket", cfg.JobSocket, "err", err)
		iso = lake.IsolationNone
	} else {
		a.log.Info("job sandbox", "mode", sandboxUnits, "socket", cfg.JobSocket, "isolation", iso)
	}
	// Limits are the units' own: hqd's cgroups (none under its unit) do
	// not matter.
	a.iso = &lake.Isolation{Mode: iso, Detail: "in an hqd-job@ unit per run"}
	return rm
}

// jobsAvailable says, before any process starts, whether a job on the
// project in dir can run: isolation, the lake binary and the project must
// all be there.
// The reasons say what is wrong without host paths or setting names: they
// reach the public /readyz and the log; jobsDetail has the rest.
func (a *App) jobsAvailable(bin, dir, what, setting string) jobs.Availability {
	return func() (bool, string) {
		switch {
		case a.sandbox == sandboxNone:
			return false, "jobs cannot run on this host: no sandbox can be made for them"
		case a.iso.Mode == lake.IsolationNone:
			return false, "jobs cannot run on this host: it has no cgroups for them"
		case dir == "":
			return false, "no " + what + " project is configured"
		}
		if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 {
			return false, "the Lean toolchain (lake) is not installed"
		}
		for _, f := range []string{"lakefile.lean", "lakefile.toml"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return true, ""
			}
		}
		return false, "the " + what + " project is not a Lake project (no lakefile)"
	}
}

// jobsDetail is why jobs cannot run, as the operator needs it: the
// sandbox's reason, the lake binary and the project directories.
func (a *App) jobsDetail() string {
	c := a.cfg
	return fmt.Sprintf("sandbox %s (%s); isolation %s; HQD_LAKE_BIN=%s; HQD_VERIFIER_DIR=%q; HQD_EVALUATOR_DIR=%q",
		a.sandbox, a.sandboxWhy, a.iso.Detail, c.LakeBin, c.VerifierDir, c.EvaluatorDir)
}
