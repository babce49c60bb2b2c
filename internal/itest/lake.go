package itest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	standinOnce sync.Once
	standinBin  string
	standinErr  error
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

// CleanupStandin removes the stand-in built by Standin, if any.
func CleanupStandin() {
	if standinBin != "" {
		_ = os.RemoveAll(filepath.Dir(standinBin)) // our own temp dir
	}
}

// Invocations are the command lines the stand-in ran in project dir.
func Invocations(tb testing.TB, dir string) []string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".lake", "invocations.log"))
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
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
	// Writable by the unprivileged job user: the stand-in logs every start
	// in .lake/, which (as build output) is not part of the cache key.
	must(os.MkdirAll(filepath.Join(dir, ".lake"), 0o755))
	log := filepath.Join(dir, ".lake", "invocations.log")
	must(os.WriteFile(log, nil, 0o666))
	must(os.Chmod(log, 0o666))
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
