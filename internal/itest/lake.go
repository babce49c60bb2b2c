package itest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	standinOnce sync.Once
	standinBin  string
	standinErr  error
	helperOnce  sync.Once
	helperBin   string
	helperErr   error
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Standin builds the stand-in lake (cmd/lake-standin) once per test
// process, into a directory every user can read (jobs run as nobody), and
// returns its path. The caller's TestMain removes it with CleanupStandin.
func Standin(tb testing.TB) string {
	tb.Helper()
	standinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hqd-standin-")
		if err != nil {
			standinErr = err
			return
		}
		_ = os.Chmod(dir, 0o755)
		standinBin = filepath.Join(dir, "lake")
		cmd := exec.Command("go", "build", "-o", standinBin, "./cmd/lake-standin")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			standinErr = fmt.Errorf("building the stand-in lake: %v\n%s", err, out)
		}
	})
	if standinErr != nil {
		tb.Fatal(standinErr)
	}
	return standinBin
}

// JobHelper builds hqd's job helper (cmd/hqd-job-exec) once per test
// process, where a run's own uid can run it (a test binary's directory is
// not), and returns its path. CleanupStandin removes it.
func JobHelper(tb testing.TB) string {
	tb.Helper()
	helperOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hqd-helper-")
		if err != nil {
			helperErr = err
			return
		}
		_ = os.Chmod(dir, 0o755)
		helperBin = filepath.Join(dir, "hqd-job-exec")
		cmd := exec.Command("go", "build", "-o", helperBin, "./cmd/hqd-job-exec")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			helperErr = fmt.Errorf("building the job helper: %v\n%s", err, out)
		}
	})
	if helperErr != nil {
		tb.Fatal(helperErr)
	}
	return helperBin
}

// CleanupStandin removes the stand-in built by Standin, the helper built
// by JobHelper and the commands built by BuildCmd, if any.
func CleanupStandin() {
	buildMu.Lock()
	bins := []string{standinBin, helperBin}
	for _, b := range builtCmd {
		bins = append(bins, b)
	}
	buildMu.Unlock()
	for _, b := range bins {
		if b != "" {
			_ = os.RemoveAll(filepath.Dir(b)) // our own temp dir
		}
	}
}

// LakeProject makes a verifier project for the stand-in lake: a lakefile,
// Proving/Basic.lean, the recorded transcripts and the scenarios (target →
// {"transcript": NAME} or {"action": NAME}; see cmd/lake-standin).
func LakeProject(tb testing.TB, scenarios map[string]map[string]any) string {
	tb.Helper()
	dir := tb.TempDir()
	_ = os.Chmod(filepath.Dir(dir), 0o755)
	_ = os.Chmod(dir, 0o755)
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, ".standin"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "Proving"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "lakefile.lean"), []byte("import Lake\nopen Lake DSL\npackage proving\n@[default_target] lean_lib Proving\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "lean-toolchain"), []byte("leanprover/lean4:v4.29.0\n"), 0o644))
	for target := range scenarios {
		if len(target) > 0 && target[0] >= 'A' && target[0] <= 'Z' {
			p := filepath.Join(dir, filepath.FromSlash(dotsToSlashes(target))+".lean")
			must(os.MkdirAll(filepath.Dir(p), 0o755))
			must(os.WriteFile(p, []byte("-- "+target+"\n"), 0o644))
		}
	}
	files, _ := filepath.Glob(filepath.Join(repoRoot(), "internal", "lake", "testdata", "transcripts", "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		must(os.WriteFile(filepath.Join(dir, ".standin", filepath.Base(f)), b, 0o644))
	}
	b, _ := json.Marshal(scenarios)
	must(os.WriteFile(filepath.Join(dir, ".standin", "scenarios.json"), b, 0o644))
	return dir
}

func dotsToSlashes(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}
