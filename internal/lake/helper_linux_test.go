package lake

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// helpers are both job helpers: the test binary playing hqd (TestMain),
// and hqd-job-exec, built here and handed over as a sealed memfd the way
// hqd does with the one it embeds.
func helpers(t *testing.T) map[string]string {
	// hqd itself: a copy of the test binary where a run's uid can run it
	// (go test's own directory is root's alone).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755)
	self = filepath.Join(dir, "hqd")
	if err := os.WriteFile(self, b, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "hqd-job-exec")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/hqd-job-exec")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building hqd-job-exec: %v\n%s", err, out)
	}
	b, err = os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	path, what := helperFrom(b, self)
	if !strings.HasPrefix(path, "/proc/self/fd/") || !strings.HasPrefix(what, "embedded") {
		t.Fatalf("the built helper was not taken: %s (%s)", path, what)
	}
	return map[string]string{"hqd itself": self, "hqd-job-exec": path}
}

// TestHelpers: with either helper the job runs in its own cgroups and
// sandbox, as a uid of its own, and its limits hold.
func TestHelpers(t *testing.T) {
	iso := isolation(t)
	dir := itest.LakeProject(t, map[string]map[string]any{
		"Standin.Who":  {"action": "whoami"},
		"Standin.Hog":  {"action": "memory"},
		"Standin.Bomb": {"action": "fork"},
	})
	for name, helper := range helpers(t) {
		t.Run(name, func(t *testing.T) {
			run := func(target string) (Outcome, *captured) {
				r := runner(t, iso, Limits{Memory: 64 << 20, Pids: 32, CPU: 1, Timeout: 10 * time.Second})
				r.Self = helper
				var c captured
				out, err := r.Run(context.Background(), Spec{Dir: dir, Args: []string{"build", target}}, c.add)
				if err != nil {
					t.Fatalf("%s: %v", target, err)
				}
				return out, &c
			}
			out, c := run("Standin.Who")
			text := strings.Join(c.lines, "\n")
			if out.ExitCode == nil || *out.ExitCode != 0 || strings.Count(text, "/"+runPrefix) < 2 {
				t.Errorf("the job is not in its run's cgroups: %+v\n%s", out, text)
			}
			// uid 0 of its own user namespace, which is one of the run
			// uids outside.
			if !strings.Contains(text, "uid 0 gid 0 groups []") || !strings.Contains(text, "uid_map 0 "+strconv.Itoa(testUIDs)[:4]) {
				t.Errorf("the job is not its own user:\n%s", text)
			}
			if out, _ := run("Standin.Hog"); out.Limit != "memory" {
				t.Errorf("memory hog: limit %q", out.Limit)
			}
			if out, _ := run("Standin.Bomb"); out.Limit != "pids" {
				t.Errorf("fork bomb: limit %q", out.Limit)
			}
		})
	}
}

// TestHelperFallback: no helper, or something else, means hqd runs
// itself as the helper, and says why.
func TestHelperFallback(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("not an executable")} {
		if path, what := helperFrom(b, "/self"); path != "/self" || !strings.HasPrefix(what, "hqd itself (") {
			t.Errorf("helper from %q: %s, %s", b, path, what)
		}
	}
}
