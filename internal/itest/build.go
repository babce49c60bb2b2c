package itest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildMu  sync.Mutex
	builtCmd = map[string]string{} // name → binary
)

// BuildCmd builds this module's ./cmd/NAME once per test process, as make
// build does (CGO off), and returns the binary's path. CleanupStandin
// removes it.
func BuildCmd(tb testing.TB, name string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := builtCmd[name]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "hqd-build-")
	if err != nil {
		tb.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		tb.Fatal(fmt.Errorf("building %s: %v\n%s", name, err, out))
	}
	builtCmd[name] = bin
	return bin
}

// StartHQD runs the hqd binary bin as `hqd ARGS` on a free loopback port
// with env (and none of the caller's HQD_ settings), stops it when the
// test ends, and returns its base URL once /readyz answers 200.
func StartHQD(tb testing.TB, bin string, env []string, args ...string) string {
	tb.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d", FreePort(tb))
	cmd := exec.Command(bin, append(args, "--addr="+url[len("http://"):], "--metrics-addr=127.0.0.1:0")...)
	for _, kv := range os.Environ() {
		if len(kv) < 4 || kv[:4] != "HQD_" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	StartUntilReady(tb, cmd, url+"/readyz")
	return url
}
