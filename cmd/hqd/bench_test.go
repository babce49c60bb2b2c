package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// startInProcess runs hqd dev in this process with extra settings.
func startInProcess(b *testing.B, env map[string]string) *App {
	b.Helper()
	args := []string{"--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir=" + b.TempDir()}
	cfg, err := parseConfig("dev", args, func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	app, err := newApp(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = app.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return app
}

// BenchmarkFiles measures 1 KiB raw GET and PUT through the whole handler
// stack (request id, access log, metrics, token check, files handler, store)
// over loopback, on the dir store and on MinIO.
func BenchmarkFiles(b *testing.B) {
	m := itest.StartMinIO(b)
	for _, backend := range []struct {
		name string
		env  map[string]string
	}{
		{"dir", nil},
		{"minio", map[string]string{"HQD_STORAGE": "s3", "HQD_BUCKET": m.Bucket(b), "HQD_S3_ENDPOINT": m.Endpoint, "HQD_S3_PATH_STYLE": "1"}},
	} {
		b.Run(backend.name, func(b *testing.B) {
			b.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
			b.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
			app := startInProcess(b, backend.env)
			h := &hqd{t: b, URL: app.publicURL}
			h.waitReady()
			tok := devSignIn(b, h, "bench@example.com", "Passw0rd!").AccessToken
			payload := bytes.Repeat([]byte("x"), 1024)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			req := func(method string, body []byte) {
				r, _ := http.NewRequest(method, app.publicURL+"/api/files/bench/file.txt?raw=1", bytes.NewReader(body))
				r.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(r)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("%s = %d", method, resp.StatusCode)
				}
			}
			b.Run("PUT-1KiB", func(b *testing.B) {
				b.SetBytes(1024)
				for range b.N {
					req("PUT", payload)
				}
			})
			b.Run("GET-1KiB", func(b *testing.B) {
				b.SetBytes(1024)
				for range b.N {
					req("GET", nil)
				}
			})
		})
	}
}

// BenchmarkSSE measures, against a real hqd process running the stand-in
// lake under cgroups: the time from a line written by the child to its
// arrival at an SSE client (p50, p99), and the resident memory hqd spends
// per open stream with 1,000 streams open on one job.
func BenchmarkSSE(b *testing.B) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < 8192 {
		lim.Cur = min(lim.Max, 8192)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) // hqd inherits it
	}
	project := itest.LakeProject(b, map[string]map[string]any{
		"lean:ticks": {"action": "ticks"}, "Standin.Loop": {"action": "loop"},
	})
	h := startHQD(b, []string{"HQD_LAKE_BIN=" + itest.Standin(b), "HQD_VERIFIER_DIR=" + project, "HQD_JOB_TIMEOUT=120s", "HQD_JOBS_MAX_PER_USER=100"},
		"dev", "--addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--data-dir="+b.TempDir())
	h.waitReady()
	tok := devSignIn(b, h, "bench@example.com", "Passw0rd!").AccessToken

	b.Run("line-to-client", func(b *testing.B) {
		var lat []time.Duration
		for i := range b.N {
			body := fmt.Sprintf(`{"source":"-- standin: ticks\n-- run %d %d\n"}`, i, time.Now().UnixNano())
			a := do(b, "POST", h.URL+"/api/verify", tok, strings.NewReader(body))
			var job submittedJob
			a.decode(b, &job)
			ch, stop := streamTB(b, h.URL+job.Events, tok)
			for ev := range ch {
				if msg, _ := ev.Data["msg"].(string); strings.HasPrefix(strings.TrimPrefix(msg, "info: "), "tick ") {
					msg = strings.TrimPrefix(msg, "info: ")
					ns, _ := strconv.ParseInt(msg[5:], 10, 64)
					lat = append(lat, time.Since(time.Unix(0, ns)))
				}
				if ev.Type == "done" {
					break
				}
			}
			stop()
		}
		slices.Sort(lat)
		if len(lat) == 0 {
			b.Fatal("no ticks arrived")
		}
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	})

	b.Run("memory-per-stream", func(b *testing.B) {
		const n = 1000
		a := do(b, "POST", h.URL+"/api/verify", tok, strings.NewReader(`{"target":"Standin.Loop"}`))
		var job submittedJob
		a.decode(b, &job)
		defer do(b, "DELETE", h.URL+"/api/jobs/"+job.ID, tok, nil)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
		open := func(k int) []func() {
			var stops []func()
			for range k {
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "GET", h.URL+job.Events, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				go func() { _, _ = io.Copy(io.Discard, resp.Body); resp.Body.Close() }()
				stops = append(stops, cancel)
			}
			return stops
		}
		for _, s := range open(20) { // warm up: pools, buffers
			s()
		}
		time.Sleep(500 * time.Millisecond)
		runtime.GC()
		before := itest.ResidentKB(b, h.cmd.Process.Pid) * 1024
		stops := open(n)
		for metric(b, h, "hqd_sse_streams_open") < n {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
		after := itest.ResidentKB(b, h.cmd.Process.Pid) * 1024
		for _, s := range stops {
			s()
		}
		b.ReportMetric(float64(after-before)/n/1024, "KB/stream")
		b.ReportMetric(float64(after)/(1<<20), "MB-rss-total")
	})
}

func streamTB(b *testing.B, url, token string) (<-chan sseEvent, func()) {
	return stream(b, url, token, "")
}
