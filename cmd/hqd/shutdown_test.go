package main

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// TestShutdownWithStreams sends SIGTERM to hqd with 2,000 event streams
// open on a running job: every stream gets its final shutdown event with
// a retry hint, every one is closed within 2 s, and hqd exits 0.
func TestShutdownWithStreams(t *testing.T) {
	const n = 2000
	project := itest.LakeProject(t, map[string]map[string]any{"Standin.Loop": {"action": "loop"}})
	h := jobsHQD(t, project, "HQD_JOB_TIMEOUT=5m")
	tok := devSignIn(t, h, "many@example.com", "Passw0rd!").AccessToken
	a, job := submit(t, h, tok, `{"target":"Standin.Loop"}`)
	if a.status != 202 {
		t.Fatalf("submit = %d %s", a.status, a.body)
	}
	u, _ := url.Parse(h.URL)
	req := "GET " + job.Events + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: Bearer " + tok + "\r\n\r\n"

	// Plain connections: 2,000 HTTP clients would cost more than hqd.
	type outcome struct {
		body   []byte
		closed time.Time
	}
	results := make([]outcome, n)
	var opened, wg sync.WaitGroup
	for i := range n {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		opened.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			var buf bytes.Buffer
			chunk := make([]byte, 512)
			first := true
			for {
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				k, err := c.Read(chunk)
				buf.Write(chunk[:k])
				if first && bytes.Contains(buf.Bytes(), []byte("retry:")) {
					first = false
					opened.Done()
				}
				if err != nil {
					break
				}
			}
			if first {
				opened.Done()
			}
			results[i] = outcome{buf.Bytes(), time.Now()}
		}()
	}
	opened.Wait()
	var st map[string]any
	do(t, "GET", h.URL+"/api/jobs/"+job.ID, tok, nil).decode(t, &st)
	if st["status"] != "running" {
		t.Fatalf("the job is %v", st["status"])
	}

	start := time.Now()
	if code, err := h.stop(30 * time.Second); err != nil || code != 0 {
		t.Errorf("SIGTERM: exit %d, %v", code, err)
	}
	wg.Wait()
	var missing, late int
	var slowest time.Duration
	for i, r := range results {
		if !bytes.HasPrefix(r.body, []byte("HTTP/1.1 200")) || !bytes.Contains(r.body, []byte("event: shutdown\ndata: {\"retryMs\":")) {
			if missing == 0 {
				t.Logf("stream %d read: %q", i, tail(r.body))
			}
			missing++
		}
		if d := r.closed.Sub(start); d > 2*time.Second {
			late++
		} else {
			slowest = max(slowest, d)
		}
	}
	t.Logf("%d streams: %d without the shutdown event, %d closed after 2 s, the rest within %s", n, missing, late, slowest)
	if missing > 0 || late > 0 {
		t.Errorf("%d of %d streams lacked the shutdown event, %d closed after 2 s", missing, n, late)
	}
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 300 {
		s = s[len(s)-300:]
	}
	return strings.TrimSpace(s)
}

// TestReloadWithoutTLS: systemctl reload (SIGHUP) of an hqd serving plain
// HTTP keeps it serving: there is nothing to reload, and it says so.
func TestReloadWithoutTLS(t *testing.T) {
	h := startHQD(t, nil, "dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+t.TempDir())
	h.waitReady()
	_ = h.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(h.Stdout(), "nothing to reload"); {
		select {
		case <-h.exited:
			t.Fatalf("hqd exited on SIGHUP: %v", h.exitErr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("hqd never acknowledged SIGHUP")
		}
	}
	if a := do(t, "GET", h.URL+"/healthz", "", nil); a.status != 200 {
		t.Errorf("after SIGHUP /healthz = %d", a.status)
	}
}
