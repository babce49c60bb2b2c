// Package itest starts the real services hqd's tests talk to — MinIO for
// S3, cognito-local for Cognito — on free loopback ports, installing them
// with the project's own scripts/tools.sh on first use. A test that cannot
// get its service fails; nothing here skips.
package itest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var installMu sync.Mutex

// Tool returns the path of a pinned test tool, installing it if needed.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	installMu.Lock()
	defer installMu.Unlock()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "tools.sh"), name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("installing %s with scripts/tools.sh: %v\n%s", name, err, stderr.String())
	}
	bin := filepath.Join(strings.TrimSpace(string(out)), name)
	if _, err := os.Stat(bin); err != nil {
		tb.Fatalf("%s is not where scripts/tools.sh put it: %v", name, err)
	}
	return bin
}

// FreePort returns a loopback port nobody listens on right now.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitHTTP polls url until it answers with a status below 500.
func waitHTTP(url string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("the process exited before %s answered", url)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer within %s", url, timeout)
}

// StartUntilReady starts cmd, stops it when the test ends, and waits (60 s
// at most) until url answers 200: for a service whose readiness is its
// whole answer (hqd's /readyz says 503 until it is ready).
func StartUntilReady(tb testing.TB, cmd *exec.Cmd, url string) {
	tb.Helper()
	p := start(tb, cmd)
	tb.Cleanup(p.Stop)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-p.exited:
			tb.Fatalf("%s exited:\n%s", cmd.Path, p.Log())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	tb.Fatalf("%s never answered %s:\n%s", cmd.Path, url, p.Log())
}

// process is a started service that stops with Stop.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    *bytes.Buffer
}

func start(tb testing.TB, cmd *exec.Cmd) *process {
	tb.Helper()
	p := &process{cmd: cmd, exited: make(chan struct{}), log: &bytes.Buffer{}}
	w := &syncWriter{w: p.log}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", cmd.Path, err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p
}

// Log is what the process printed so far.
func (p *process) Log() string {
	w := p.cmd.Stdout.(*syncWriter)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}

// Stop ends the process and waits for it.
func (p *process) Stop() {
	_ = p.cmd.Process.Kill() // it may have exited already
	<-p.exited
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
