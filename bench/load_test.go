package bench

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// TestLoad drives mixed files traffic (GET, PUT, LIST, DELETE) at hqd on
// MinIO: no 5xx, every acknowledged write is what a later read returns,
// and hqd's goroutines and heap come back down afterwards. make test runs
// it for 5 s with 32 connections; HQD_LOAD=1 (make load) for 60 s with 256;
// HQD_LOAD_DURATION sets another length (make soak: 10 minutes).
func TestLoad(t *testing.T) {
	d, conns := 5*time.Second, 32
	if os.Getenv("HQD_LOAD") == "1" {
		d, conns = 60*time.Second, 256
	}
	if v := os.Getenv("HQD_LOAD_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("HQD_LOAD_DURATION=%q: want a positive Go duration such as 10m", v)
		}
	}
	m := itest.StartMinIO(t)
	bucket := m.Bucket(t)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", itest.FreePort(t))
	p := start(t, "HQD_METRICS_ADDR="+metricsAddr, "HQD_STORAGE=s3", "HQD_BUCKET="+bucket, "HQD_S3_ENDPOINT="+m.Endpoint, "HQD_S3_PATH_STYLE=1",
		"AWS_ACCESS_KEY_ID="+m.AccessKey, "AWS_SECRET_ACCESS_KEY="+m.SecretKey, "HQD_AWS_REGION="+m.Region)
	tok := signIn(t, p.url)
	metric := func(name string) float64 {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return 0
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}, Timeout: 30 * time.Second}
	do := func(method, path string, body []byte) (int, []byte, string, error) {
		req, _ := http.NewRequest(method, p.url+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header.Get("ETag"), nil
	}
	type state struct {
		etag string // "" when deleted or never written
		sum  string
	}
	var (
		ops, fails atomic.Int64
		mu         sync.Mutex
		problems   []string
	)
	fail := func(format string, args ...any) {
		fails.Add(1)
		mu.Lock()
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	finals := make([]map[string]state, conns)
	var baseG, baseHeap float64
	// A short warm-up at the same concurrency first: the baseline then
	// includes the store's pool of kept-alive connections (two goroutines
	// each, by design), and what follows shows growth, not the pool.
	for phase, length := range []time.Duration{time.Second, d} {
		deadline := time.Now().Add(length)
		var wg sync.WaitGroup
		for w := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 7))
				if finals[w] == nil {
					finals[w] = map[string]state{}
				}
				mine := finals[w]
				for time.Now().Before(deadline) {
					key := fmt.Sprintf("load/w%d/k%d", w, r.IntN(8))
					path := "/api/files/" + key + "?raw=1"
					ops.Add(1)
					switch op := r.IntN(10); {
					case op < 4: // PUT
						body := make([]byte, 1024+r.IntN(7*1024))
						for i := range body {
							body[i] = byte(r.IntN(256))
						}
						code, _, etag, err := do("PUT", path, body)
						switch {
						case err != nil || code >= 500:
							fail("PUT %s: %d %v", key, code, err)
						case code == 200:
							h := md5.Sum(body)
							mine[key] = state{etag: etag, sum: hex.EncodeToString(h[:])}
						default:
							fail("PUT %s: %d", key, code)
						}
					case op < 8: // GET: exactly the last acknowledged write
						code, b, etag, err := do("GET", path, nil)
						want := mine[key]
						h := md5.Sum(b)
						switch {
						case err != nil || code >= 500:
							fail("GET %s: %d %v", key, code, err)
						case want.etag == "" && code != 404:
							fail("GET %s: %d, want 404", key, code)
						case want.etag != "" && (code != 200 || etag != want.etag || hex.EncodeToString(h[:]) != want.sum):
							fail("GET %s: %d %s, want the acknowledged %s", key, code, etag, want.etag)
						}
					case op < 9: // LIST
						code, _, _, err := do("GET", fmt.Sprintf("/api/files?prefix=load/w%d/&limit=5", w), nil)
						if err != nil || code != 200 {
							fail("LIST: %d %v", code, err)
						}
					default: // DELETE
						code, _, _, err := do("DELETE", "/api/files/"+key, nil)
						if err != nil || code != 204 {
							fail("DELETE %s: %d %v", key, code, err)
						} else {
							mine[key] = state{}
						}
					}
				}
			}()
		}
		wg.Wait()
		if phase == 0 {
			client.CloseIdleConnections()
			time.Sleep(500 * time.Millisecond)
			baseG, baseHeap = metric("go_goroutines"), metric("go_memstats_heap_inuse_bytes")
		}
	}
	t.Logf("%d operations in %s over %d connections; %d failures", ops.Load(), d, conns, fails.Load())
	for _, pr := range problems {
		t.Error(pr)
	}
	// Every acknowledged write is there, with its ETag.
	for w, mine := range finals {
		for key, st := range mine {
			code, _, etag, err := do("GET", "/api/files/"+key+"?raw=1", nil)
			if st.etag == "" && code != 404 || st.etag != "" && (err != nil || code != 200 || etag != st.etag) {
				t.Errorf("after the load, worker %d's %s: %d %s, want %q", w, key, code, etag, st.etag)
			}
		}
	}
	client.CloseIdleConnections()
	// The store's pool may keep more connections than the warm-up needed
	// (two goroutines each, at most one per concurrent request), more so
	// when other tests share the machine. A leak grows with the operations
	// (thousands here), not with the connections: 2 per connection is room
	// for the pool, not for a leak.
	slack := 5 + 2*float64(conns)
	var g, heap float64
	for range 50 { // give the server a moment to see the closed connections
		time.Sleep(100 * time.Millisecond)
		g, heap = metric("go_goroutines"), metric("go_memstats_heap_inuse_bytes")
		if g <= baseG+slack {
			break
		}
	}
	t.Logf("goroutines %v → %v; heap in use %.1f → %.1f MB", baseG, g, baseHeap/1e6, heap/1e6)
	if g > baseG+slack {
		t.Errorf("goroutines did not return to their baseline: %v → %v", baseG, g)
	}
	if heap > 2*baseHeap+32e6 {
		t.Errorf("heap in use did not come back down: %.1f → %.1f MB", baseHeap/1e6, heap/1e6)
	}
}
