package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestBodyIdle: a request body that stops sending ends its request
// (HQD_BODY_IDLE_TIMEOUT, 1 s here) with 408 or a closed connection, on an
// authenticated upload and on the unauthenticated refresh route alike,
// and leaves nothing behind; a 10 MB upload that keeps moving slowly, for
// several times the timeout, completes.
func TestBodyIdle(t *testing.T) {
	h := startHQD(t, []string{"HQD_BODY_IDLE_TIMEOUT=1s"}, "dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+t.TempDir())
	h.waitReady()
	tok := devSignIn(t, h, "slow@example.com", "Passw0rd!").AccessToken

	// send starts a request whose body is written by feed; it answers the
	// status, or 0 when the connection was closed instead.
	send := func(method, path string, size int64, feed func(w io.Writer)) (int, time.Duration) {
		pr, pw := io.Pipe()
		go func() { feed(pw); pw.Close() }()
		req, _ := http.NewRequest(method, h.URL+path, pr)
		req.ContentLength = size
		req.Header.Set("Authorization", "Bearer "+tok)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		pr.CloseWithError(io.ErrClosedPipe) // unblock a feeder still writing
		if err != nil {
			return 0, time.Since(start)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}

	// 10 MB at a steady 2.5 MB/s: four times the timeout, never idle.
	chunk := bytes.Repeat([]byte("m"), 256<<10)
	status, took := send("PUT", "/api/files/moving.bin?raw=1", 40*int64(len(chunk)), func(w io.Writer) {
		for range 40 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if status != 200 || took < 3*time.Second {
		t.Errorf("a slow, steady 10 MB upload = %d after %v, want 200 after ~4 s", status, took)
	}

	stall := func(first []byte) func(io.Writer) {
		return func(w io.Writer) {
			_, _ = w.Write(first)
			time.Sleep(10 * time.Second) // the client goes quiet
		}
	}
	for _, tc := range []struct{ name, method, path string }{
		{"an upload that stops", "PUT", "/api/files/stalled.bin?raw=1"},
		{"an unauthenticated refresh that trickles", "POST", "/api/auth/refresh"},
		{"an evaluation that stops", "POST", "/api/evaluate"},
	} {
		status, took := send(tc.method, tc.path, 1<<20, stall([]byte(`{"refreshToken":"`)))
		if (status != 408 && status != 0) || took > 5*time.Second {
			t.Errorf("%s = %d after %v, want 408 (or a closed connection) after ~1 s", tc.name, status, took)
		}
	}
	if a := do(t, "GET", h.URL+"/api/files/stalled.bin?raw=1", tok, nil); a.status != 404 {
		t.Errorf("the stalled upload left a file: %d", a.status)
	}
	if a := do(t, "GET", h.URL+"/api/files/moving.bin?raw=1", tok, nil); a.status != 200 || len(a.body) != 40*len(chunk) {
		t.Errorf("the slow upload = %d, %d bytes", a.status, len(a.body))
	}
}
