package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

func TestCommonHTTP(t *testing.T) {
	h := startHQD(t, nil, "dev", "--addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--data-dir="+t.TempDir())
	h.waitReady()

	t.Run("security headers on every answer", func(t *testing.T) {
		for _, p := range []string{"/", "/healthz", "/api/files", "/api/nope", "/metrics"} {
			a := do(t, "GET", h.URL+p, "", nil)
			for _, hd := range []string{"X-Content-Type-Options", "Referrer-Policy", "Content-Security-Policy", "X-Request-Id"} {
				if a.header.Get(hd) == "" {
					t.Errorf("GET %s: no %s", p, hd)
				}
			}
			if a.header.Get("Strict-Transport-Security") != "" {
				t.Errorf("GET %s: HSTS over plain HTTP", p)
			}
			if !strings.Contains(a.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("CSP = %q", a.header.Get("Content-Security-Policy"))
			}
		}
	})

	t.Run("request ids", func(t *testing.T) {
		if a := do(t, "GET", h.URL+"/healthz", "", nil, "X-Request-Id", "abc.DEF_123-x"); a.header.Get("X-Request-Id") != "abc.DEF_123-x" {
			t.Errorf("a valid request id is not echoed: %q", a.header.Get("X-Request-Id"))
		}
		for _, bad := range []string{strings.Repeat("a", 129), "a b", "<script>", "a/b"} {
			a := do(t, "GET", h.URL+"/api/nope", "", nil, "X-Request-Id", bad)
			got := a.header.Get("X-Request-Id")
			if got == bad || got == "" || !strings.Contains(string(a.body), `"requestId":"`+got+`"`) {
				t.Errorf("request id %q: answered %q, body %s", bad, got, a.body)
			}
		}
	})

	t.Run("unknown routes are JSON 404s", func(t *testing.T) {
		for _, p := range []string{"/metrics", "/api/nope", "/dev/", "/api/", "/healthz/x", "/missing.js"} {
			a := do(t, "GET", h.URL+p, "", nil)
			if a.status != 404 || a.code() != "not_found" || a.header.Get("Content-Type") != "application/json" {
				t.Errorf("GET %s = %d %s", p, a.status, a.body)
			}
		}
		if a := do(t, "PATCH", h.URL+"/api/files/x", "", nil); a.status != 405 || a.code() != "method_not_allowed" {
			t.Errorf("PATCH = %d %s", a.status, a.body)
		}
		if a := do(t, "POST", h.URL+"/api/verify", "", nil); a.status != 401 {
			t.Errorf("POST /api/verify without a token = %d", a.status)
		}
	})

	t.Run("CORS", func(t *testing.T) {
		a := do(t, "OPTIONS", h.URL+"/api/files/x", "", nil, "Origin", "http://localhost:5173", "Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "authorization,if-match,content-type")
		if a.status/100 != 2 || a.header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" || !strings.Contains(a.header.Get("Access-Control-Allow-Methods"), "PUT") {
			t.Errorf("preflight from an allowed origin = %d %v", a.status, a.header)
		}
		a = do(t, "OPTIONS", h.URL+"/api/jobs/1/events", "", nil, "Origin", "https://hq.indigoai.com", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "last-event-id")
		if a.header.Get("Access-Control-Allow-Origin") != "https://hq.indigoai.com" {
			t.Errorf("preflight with Last-Event-ID = %d %v", a.status, a.header)
		}
		a = do(t, "OPTIONS", h.URL+"/api/files/x", "", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "PUT")
		if a.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from a foreign origin allowed: %v", a.header)
		}
		a = do(t, "GET", h.URL+"/api/files", "", nil, "Origin", "http://localhost:5173")
		if a.header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" || !strings.Contains(a.header.Get("Access-Control-Expose-Headers"), "Etag") {
			t.Errorf("simple request: %v", a.header)
		}
	})

	t.Run("health and readiness", func(t *testing.T) {
		if a := do(t, "GET", h.URL+"/healthz", "", nil); a.status != 200 {
			t.Errorf("/healthz = %d", a.status)
		}
		a := do(t, "GET", h.URL+"/readyz", "", nil)
		for _, name := range []string{`"jwks"`, `"store"`, `"jobs"`} {
			if !strings.Contains(string(a.body), name) {
				t.Errorf("/readyz does not report %s: %s", name, a.body)
			}
		}
	})

	t.Run("body limits", func(t *testing.T) {
		a := do(t, "POST", h.URL+"/dev/cognito/", "", bytes.NewReader(make([]byte, 11<<20)))
		if a.status != 413 || a.code() != "body_too_large" {
			t.Errorf("11 MiB POST = %d %s", a.status, a.body)
		}
	})
}

func TestStoreDownServesHealth(t *testing.T) {
	port := itest.FreePort(t)
	h := startHQD(t, []string{
		"HQD_STORAGE=s3", "HQD_BUCKET=down-bucket", fmt.Sprintf("HQD_S3_ENDPOINT=http://127.0.0.1:%d", port), "HQD_S3_PATH_STYLE=1",
		"AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=y", "HQD_JWT_ISSUER=http://127.0.0.1:1/pool", "HQD_COGNITO_CLIENT_IDS=c",
		"HQD_ADDR=127.0.0.1:0", "HQD_METRICS_ADDR=", "HQD_DATA_DIR=" + t.TempDir(),
	}, "serve")
	if a := do(t, "GET", h.URL+"/healthz", "", nil); a.status != 200 {
		t.Errorf("/healthz = %d", a.status)
	}
	a := do(t, "GET", h.URL+"/readyz", "", nil)
	if a.status != 503 || !strings.Contains(string(a.body), `"store":{"ok":false`) || strings.Contains(string(a.body), "127.0.0.1:"+fmt.Sprint(port)) {
		t.Errorf("/readyz with the store and JWKS down = %d %s", a.status, a.body)
	}
}

func TestGracefulShutdown(t *testing.T) {
	// systemd's notify socket, played by the test.
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	notes := make(chan string, 10)
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			notes <- string(buf[:n])
		}
	}()
	h := startHQD(t, []string{"NOTIFY_SOCKET=" + sock}, "dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+t.TempDir(), "--shutdown-grace=10s")
	select {
	case n := <-notes:
		if n != "READY=1" {
			t.Errorf("first notification = %q, want READY=1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no READY=1 on the notify socket")
	}
	h.waitReady()
	tok := devSignIn(t, h, "slow@example.com", "Passw0rd!")
	// An upload in flight when SIGTERM arrives still completes.
	pr, pw := io.Pipe()
	done := make(chan call, 1)
	go func() { done <- do(t, "PUT", h.URL+"/api/files/slow.bin?raw=1", tok.AccessToken, pr) }()
	_, _ = pw.Write([]byte("first half;"))
	time.Sleep(200 * time.Millisecond)
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	_, _ = pw.Write([]byte("second half"))
	pw.Close()
	select {
	case a := <-done:
		if a.status != 200 {
			t.Errorf("in-flight upload = %d %s", a.status, a.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight upload never finished")
	}
	select {
	case <-h.exited:
		if code := h.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hqd did not exit")
	}
	select {
	case n := <-notes:
		if n != "STOPPING=1" {
			t.Errorf("notification on SIGTERM = %q, want STOPPING=1", n)
		}
	default:
		t.Error("no STOPPING=1 on the notify socket")
	}
	if !strings.Contains(h.Stdout(), `"msg":"shutting down"`) {
		t.Error("no shutdown log line")
	}
}

func TestCommands(t *testing.T) {
	run := func(args ...string) (string, int) {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "GO_HQD_TEST_MAIN=1")
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := run("version"); code != 0 || !strings.HasPrefix(out, "hqd ") {
		t.Errorf("hqd version = %d %q", code, out)
	}
	if out, code := run("serve", "--help"); code != 0 || !strings.Contains(out, "HQD_BUCKET") {
		t.Errorf("hqd serve --help = %d %q", code, out)
	}
	if out, code := run("frobnicate"); code == 0 || !strings.Contains(out, `unknown command "frobnicate"`) {
		t.Errorf("hqd frobnicate = %d %q", code, out)
	}
	out, code := run("serve")
	if code == 0 || !strings.Contains(out, "HQD_BUCKET is required") {
		t.Errorf("hqd serve with nothing set = %d %q", code, out)
	}
	if !strings.Contains(out, "hqd: ") {
		t.Errorf("refusal is not one clear line: %q", out)
	}
	_ = http.StatusOK
}
