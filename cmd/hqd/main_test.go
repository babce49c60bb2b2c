package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/files"
)

// TestMain lets the test binary play hqd itself: tests start it as a child
// process and talk to it over the wire, as a user would.
func TestMain(m *testing.M) {
	if os.Getenv("GO_HQD_TEST_MAIN") == "1" || (len(os.Args) > 1 && os.Args[1] == "job-exec") {
		if os.Getenv("GO_HQD_TEST_KILL_AFTER_COPY") == "1" { // TestMoveCrash
			files.TestHookAfterCopy = func() {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hqd is a running hqd process.
type hqd struct {
	t          testing.TB
	cmd        *exec.Cmd
	URL        string
	MetricsURL string
	mu         sync.Mutex
	stdout     bytes.Buffer
	stderr     bytes.Buffer
	exited     chan struct{}
	exitErr    error
}

// startHQD runs `hqd <args>` with env (and nothing else of the test's HQD_
// settings) and waits for its "listening" line.
func startHQD(t testing.TB, env []string, args ...string) *hqd {
	t.Helper()
	h := &hqd{t: t, exited: make(chan struct{})}
	h.cmd = execHQD(env, args...)
	pr, pw := io.Pipe()
	h.cmd.Stdout = pw
	h.cmd.Stderr = &lockedWriter{&h.mu, &h.stderr}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			h.mu.Lock()
			h.stdout.Write(sc.Bytes())
			h.stdout.WriteByte('\n')
			h.mu.Unlock()
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "listening" {
				listening <- line
			}
		}
	}()
	go func() {
		h.exitErr = h.cmd.Wait()
		pw.Close()
		close(h.exited)
	}()
	t.Cleanup(func() {
		_ = h.cmd.Process.Kill() // it may have exited already
		<-h.exited
		for _, l := range seen.Leaks(h.Stdout() + h.Stderr()) {
			t.Errorf("hqd's output carries %s", l)
		}
		if t.Failed() {
			t.Logf("hqd stdout:\n%s\nhqd stderr:\n%s", h.Stdout(), h.Stderr())
		}
	})
	select {
	case line := <-listening:
		h.URL = line["url"].(string)
		if m, _ := line["metrics"].(string); m != "off" {
			h.MetricsURL = "http://" + m
		}
		publicURLs.Store(h.URL, true) // do() checks its answers against the OpenAPI document
		t.Cleanup(func() { publicURLs.Delete(h.URL) })
	case <-h.exited:
		t.Fatalf("hqd exited before listening: %v\nstdout:\n%s\nstderr:\n%s", h.exitErr, h.Stdout(), h.Stderr())
	case <-time.After(30 * time.Second):
		t.Fatalf("hqd did not start listening\nstdout:\n%s\nstderr:\n%s", h.Stdout(), h.Stderr())
	}
	return h
}

// execHQD is the command for `hqd <args>` with env, not started.
func execHQD(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HQD_") && !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "GO_HQD_TEST_MAIN=1")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func (h *hqd) Stdout() string { h.mu.Lock(); defer h.mu.Unlock(); return h.stdout.String() }
func (h *hqd) Stderr() string { h.mu.Lock(); defer h.mu.Unlock(); return h.stderr.String() }

// logged waits (up to 5 s) for hqd's stdout to contain s: its log lines
// arrive through a pipe, after the answer the test already has.
func (h *hqd) logged(s string) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(h.Stdout(), s) {
			return true
		}
	}
	return false
}

// waitReady polls /readyz until it answers 200.
func (h *hqd) waitReady() {
	h.t.Helper()
	for range 300 {
		resp, err := http.Get(h.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatal("hqd never became ready")
}

// stop sends SIGTERM and returns how it exited.
func (h *hqd) stop(timeout time.Duration) (exitCode int, err error) {
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
		return h.cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("hqd did not exit within %s of SIGTERM", timeout)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// call is one HTTP exchange.
type call struct {
	status int
	header http.Header
	body   []byte
}

func (c call) code() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(c.body, &e)
	return e.Error.Code
}

func (c call) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(c.body, v); err != nil {
		t.Fatalf("answer is not JSON (%v): %s", err, c.body)
	}
}

// do makes one request and returns hqd's answer, which it checks against
// the OpenAPI document when it comes from an hqd's public listener.
func do(t testing.TB, method, url, token string, body io.Reader, hdr ...string) call {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	note(token, "bearer token")
	remember(b)
	c := call{resp.StatusCode, resp.Header, b}
	checkAnswer(t, req, c)
	return c
}

// cognito calls an action of a Cognito-protocol endpoint.
func cognito(t testing.TB, endpoint, action string, in any) call {
	t.Helper()
	b, _ := json.Marshal(in)
	remember(b) // passwords and refresh tokens sent
	return do(t, "POST", endpoint, "", bytes.NewReader(b),
		"X-Amz-Target", "AWSCognitoIdentityProviderService."+action, "Content-Type", "application/x-amz-json-1.1")
}
