package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// TestKilledAndRestarted kills hqd with SIGKILL while a job (whose child
// escaped to its own session) runs and an upload is half sent, then
// starts it again on the same data directory: no process of the job is
// left running, no job cgroup of the dead daemon is left, and the half
// upload left no file, visible or temporary.
func TestKilledAndRestarted(t *testing.T) {
	project := itest.LakeProject(t, map[string]map[string]any{"Standin.Away": {"action": "escape"}})
	dir := t.TempDir()
	env := []string{"HQD_LAKE_BIN=" + itest.Standin(t), "HQD_VERIFIER_DIR=" + project, "HQD_JOB_TIMEOUT=5m"}
	// The same address after the restart: the dev issuer is named by it.
	args := []string{"dev", fmt.Sprintf("--addr=127.0.0.1:%d", itest.FreePort(t)), "--metrics-addr=", "--data-dir=" + dir}
	h := startHQD(t, env, args...)
	h.waitReady()
	tok := devSignIn(t, h, "crash@example.com", "Passw0rd!").AccessToken

	if a := do(t, "PUT", h.URL+"/api/files/kept.md?raw=1", tok, strings.NewReader("kept")); a.status != 200 {
		t.Fatalf("PUT = %d %s", a.status, a.body)
	}
	a, job := submit(t, h, tok, `{"target":"Standin.Away"}`)
	if a.status != 202 {
		t.Fatalf("submit = %d %s", a.status, a.body)
	}
	// The stand-in prints "standin: pid N" for every process it starts
	// (pids of the job's own namespace: only their number matters here).
	ch, stop := stream(t, h.URL+job.Events, tok, "")
	defer stop()
	var pids []int
	for deadline := time.After(10 * time.Second); len(pids) < 3; {
		select {
		case ev := <-ch:
			var pid int
			if msg, _ := ev.Data["msg"].(string); strings.Contains(msg, "standin: pid") {
				_, _ = fmt.Sscanf(msg[strings.Index(msg, "standin: pid"):], "standin: pid %d", &pid)
				pids = append(pids, pid)
			}
		case <-deadline:
			t.Fatalf("the job's processes never showed: %v", pids)
		}
	}
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PUT", h.URL+"/api/files/half.bin?raw=1", pr)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.ContentLength = 2 << 20
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil { // it fails: hqd is killed mid-upload
			resp.Body.Close()
		}
	}()
	_, _ = pw.Write(bytes.Repeat([]byte("h"), 1<<20))

	leftovers := func() []string {
		var out []string
		for _, pattern := range cgroupGlobs(fmt.Sprintf("run-%d.*", h.cmd.Process.Pid)) {
			m, _ := filepath.Glob(pattern)
			out = append(out, m...)
		}
		return out
	}
	if len(leftovers()) == 0 {
		t.Fatalf("no job cgroup found for the running job (looked at %v)", cgroupGlobs("run-*"))
	}
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.exited
	pw.CloseWithError(io.ErrUnexpectedEOF)

	h2 := startHQD(t, env, args...)
	h2.waitReady()
	alive := itest.Processes(itest.Standin(t))
	for _, pid := range alive {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if len(alive) > 0 {
		t.Errorf("processes %v of the killed daemon's job still run after the restart", alive)
	}
	if l := leftovers(); len(l) > 0 {
		t.Errorf("job cgroups of the killed daemon left: %v", l)
	}
	tok2 := tok // the dev signing key is kept in the data dir
	if a := do(t, "GET", h2.URL+"/api/files/half.bin?raw=1", tok2, nil); a.status != 404 {
		t.Errorf("the half upload after the restart = %d (%d bytes), want 404", a.status, len(a.body))
	}
	if a := do(t, "GET", h2.URL+"/api/files/kept.md?raw=1", tok2, nil); a.status != 200 || string(a.body) != "kept" {
		t.Errorf("the file written before the kill = %d %q", a.status, a.body)
	}
	if tmps, _ := os.ReadDir(filepath.Join(dir, "files", ".tmp")); len(tmps) != 0 {
		t.Errorf("temp files left after the restart: %d", len(tmps))
	}
}

// cgroupGlobs are where this process's children put their job cgroups:
// hqd-jobs under our own cgroup, per v1 controller and in v2.
func cgroupGlobs(name string) []string {
	b, _ := os.ReadFile("/proc/self/cgroup")
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			if c == "memory" || c == "pids" || c == "cpu" {
				out = append(out, filepath.Join("/sys/fs/cgroup", c, f[2], "hqd-jobs", name))
			}
		}
		if f[1] == "" {
			out = append(out, filepath.Join("/sys/fs/cgroup", f[2], "hqd-jobs", name), filepath.Join("/sys/fs/cgroup/unified", f[2], "hqd-jobs", name))
		}
	}
	return out
}
