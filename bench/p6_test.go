package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// p6 serves the app's built files (internal/web/dist, with their .br and
// .gz twins) from hqd and from Caddy's file_server (precompressed br gzip)
// and compares their throughput on what a browser asks: every file with
// Accept-Encoding, and every file again revalidated with its ETag (304).
func p6(t *testing.T, rounds int, d time.Duration, workers int) []figure {
	dist, err := filepath.Abs("../internal/web/dist")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dist, "index.html")); err != nil {
		t.Fatalf("P6 needs the app built into internal/web/dist (make web): %v", err)
	}
	var paths []string
	_ = filepath.WalkDir(dist, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && !strings.HasSuffix(p, ".br") && !strings.HasSuffix(p, ".gz") && !strings.HasPrefix(e.Name(), ".") {
			paths = append(paths, strings.TrimPrefix(p, dist))
		}
		return err
	})

	h := start(t)
	caddy := startCaddy(t, dist)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	plans := map[string][]*http.Request{}
	for name, base := range map[string]string{"hqd": h.url, "caddy": caddy} {
		for _, p := range paths {
			req, _ := http.NewRequest("GET", base+p, nil)
			req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd") // as Chromium sends it
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			etag := resp.Header.Get("ETag")
			if resp.StatusCode != 200 || etag == "" {
				t.Fatalf("%s GET %s: %d, ETag %q", name, p, resp.StatusCode, etag)
			}
			if _, err := os.Stat(filepath.Join(dist, p+".br")); err == nil && resp.Header.Get("Content-Encoding") != "br" {
				t.Fatalf("%s GET %s: Content-Encoding %q, want the precompressed br", name, p, resp.Header.Get("Content-Encoding"))
			}
			again := req.Clone(req.Context())
			again.Header.Set("If-None-Match", etag)
			plans[name] = append(plans[name], req, again)
		}
	}
	load := func(name string) func() float64 {
		plan := plans[name]
		return func() float64 {
			var next atomic.Int64
			return throughput(t, workers, d, func() error {
				req := plan[int(next.Add(1))%len(plan)]
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if want := map[bool]int{true: 304, false: 200}[req.Header.Get("If-None-Match") != ""]; resp.StatusCode != want {
					return fmt.Errorf("%s %s: %d, want %d", name, req.URL.Path, resp.StatusCode, want)
				}
				return nil
			})
		}
	}
	hq, cd := alternate(rounds, load("hqd"), load("caddy"))
	r := hq / cd
	return []figure{{ID: "P6", Name: fmt.Sprintf("the app's %d files (br, then 304) through hqd vs Caddy file_server (%d workers)", len(paths), workers),
		Budget: "≥ 1.0×", Value: hq, Unit: "req/s", Ratio: r, Met: r >= 1.0, Note: fmt.Sprintf("hqd %.0f req/s, Caddy %.0f req/s", hq, cd)}}
}

// startCaddy serves dir with Caddy's file_server on a loopback port,
// precompressed files preferred, no admin endpoint, no HTTPS, no log.
func startCaddy(t *testing.T, dir string) string {
	bin := itest.Tool(t, "caddy")
	port := itest.FreePort(t)
	conf := filepath.Join(t.TempDir(), "Caddyfile")
	err := os.WriteFile(conf, fmt.Appendf(nil, `{
	admin off
	auto_https off
	persist_config off
}
http://127.0.0.1:%d {
	root * %s
	file_server {
		precompressed br gzip
	}
}
`, port, dir), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for range 200 {
		if resp, err := http.Get(url + "/index.html"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("caddy did not serve %s:\n%s", dir, out.String())
	return ""
}
