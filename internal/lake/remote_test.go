package lake

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// jobSocket plays hqd-job.socket with Accept=yes: every connection is
// served by Serve, as `hqd job-run` in its own unit would. (Here it runs
// as root, in this process's cgroups; make test-target runs the real
// units, each as a user of its own.)
func jobSocket(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "job.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			go func() {
				f, err := c.File()
				c.Close()
				if err != nil {
					return
				}
				if err := Serve(f, self); err != nil {
					t.Logf("serve: %v", err)
				}
			}()
		}
	}()
	return path
}

// TestRemote: a run asked for on the job socket streams its output into
// our pipes, keeps its limits, and is killed when we cancel it.
func TestRemote(t *testing.T) {
	sock := jobSocket(t)
	dir := itest.LakeProject(t, map[string]map[string]any{
		"Proving.Basic": {"transcript": "01-clean-build"},
		"Standin.Hog":   {"action": "memory"},
		"Standin.Deaf":  {"action": "ignore-term"},
		"exe:echo":      {"action": "echo-stdin"},
	})
	bin := itest.Standin(t)
	rm := &Remote{Socket: sock, Bin: bin, Limits: Limits{Memory: 64 << 20, Pids: 32, CPU: 1, Timeout: 20 * time.Second}}
	if iso, err := rm.Check(dir); err != nil || !strings.HasPrefix(iso, "cgroup") {
		t.Fatalf("trial run: %q %v", iso, err)
	}
	var c captured
	out, err := rm.Run(context.Background(), Spec{Dir: dir, Args: []string{"build", "Proving.Basic"}}, c.add)
	if err != nil || out.ExitCode == nil || *out.ExitCode != 0 || !strings.Contains(strings.Join(c.lines, "\n"), "stdout: Build completed successfully (10 jobs).") {
		t.Errorf("replay: %+v %v\n%s", out, err, strings.Join(c.lines, "\n"))
	}
	c = captured{}
	out, err = rm.Run(context.Background(), Spec{Dir: dir, Args: []string{"exe", "echo"}, Stdin: []byte(`{"a":1}`)}, c.add)
	if err != nil || !strings.Contains(strings.Join(c.lines, "\n"), `stdout: {"input":{"a":1}}`) {
		t.Errorf("stdin: %+v %v %v", out, err, c.lines)
	}
	if out, err := rm.Run(context.Background(), Spec{Dir: dir, Args: []string{"build", "Standin.Hog"}}, (&captured{}).add); err != nil || out.Limit != "memory" {
		t.Errorf("memory hog: %+v %v", out, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	out, err = rm.Run(ctx, Spec{Dir: dir, Args: []string{"build", "Standin.Deaf"}}, (&captured{}).add)
	if err != nil || !out.Cancelled || out.Duration > 10*time.Second {
		t.Errorf("cancelled run: %+v %v", out, err)
	}
	noLeftovers(t, bin)
	if _, err := (&Remote{Socket: filepath.Join(t.TempDir(), "none"), Bin: bin, Limits: rm.Limits}).Run(context.Background(), Spec{Dir: dir, Args: []string{"build", "Proving.Basic"}}, c.add); err == nil {
		t.Error("a run without a job socket started")
	}
}
