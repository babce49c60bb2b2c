// Package bench holds `make bench`: comparisons run side by side in
// alternating rounds on this machine, written to docs/BENCHMARKS.md with
// a chart. `make test` runs the same code once with tiny inputs (no file
// written) so it cannot rot. Nothing here asserts a time.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/quantapix/hqd/internal/itest"
)

// full says whether this is `make bench` (HQD_BENCH=1) rather than the
// tiny smoke run of `make test`.
func full() bool { return os.Getenv("HQD_BENCH") == "1" }

// want says whether figure id is to be measured: all of them, unless
// HQD_BENCH_ONLY names some ("P4,P7"); a partial run writes no report.
func want(id string) bool {
	only := os.Getenv("HQD_BENCH_ONLY")
	return only == "" || slices.Contains(strings.Split(only, ","), id)
}

type figure struct {
	ID, Name, Budget string
	Value            float64
	Unit             string
	Ratio            float64 // 0 when the figure is a budget, not a ratio
	Met              bool
	Note             string
}

type proc struct {
	cmd   *exec.Cmd
	url   string
	ready time.Duration
}

// start runs `hqd dev` with env and waits for READY on a notify socket.
func start(t *testing.T, env ...string) *proc {
	t.Helper()
	return startMode(t, "dev", env...)
}

// startMode runs `hqd MODE` (dev or serve) with env and waits for READY.
func startMode(t *testing.T, mode string, env ...string) *proc {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	port := itest.FreePort(t)
	cmd := exec.Command(itest.BuildCmd(t, "hqd"), mode, fmt.Sprintf("--addr=127.0.0.1:%d", port), "--data-dir="+t.TempDir(), "--log-level=warn")
	cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET="+sock, "HQD_METRICS_ADDR="), env...) // the last of a name wins
	// HQD_BENCH_HQD_ENV="GOGC=400 GOMAXPROCS=1" tries runtime settings on
	// the hqd processes only, not on the load generator or MinIO.
	cmd.Env = append(cmd.Env, strings.Fields(os.Getenv("HQD_BENCH_HQD_ENV"))...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		for _, l := range secrets.Leaks(stdout.String() + stderr.String()) {
			t.Errorf("hqd's output carries %s", l)
		}
	})
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("no READY=1: %v %q\n%s", err, buf[:n], stderr.String())
	}
	p := &proc{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), ready: time.Since(begin)}
	for range 200 { // the JWKS loads right after READY
		if resp, err := http.Get(p.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

func signIn(t *testing.T, base string) string {
	t.Helper()
	call := func(action string, in any) map[string]any {
		_, out := itest.CognitoCall(t, base+"/dev/cognito/", action, in)
		return out
	}
	call("SignUp", map[string]any{"ClientId": "hqddevclient", "Username": "bench@example.com", "Password": "Passw0rd!"})
	out := call("InitiateAuth", map[string]any{"ClientId": "hqddevclient", "AuthFlow": "USER_PASSWORD_AUTH",
		"AuthParameters": map[string]string{"USERNAME": "bench@example.com", "PASSWORD": "Passw0rd!"}})
	ar, _ := out["AuthenticationResult"].(map[string]any)
	tok, _ := ar["AccessToken"].(string)
	if tok == "" {
		t.Fatalf("no token: %v", out)
	}
	refresh, _ := ar["RefreshToken"].(string)
	secrets.Note(tok, "access token")
	secrets.Note(refresh, "refresh token")
	return tok
}

// secrets are the tokens handed out by signIn: no hqd output may carry
// them, or anything shaped like a JWT.
var secrets itest.Secrets

// throughput runs op from workers goroutines for d and returns ops/s.
func throughput(t *testing.T, workers int, d time.Duration, op func() error) float64 {
	var n atomic.Int64
	var failed atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	begin := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := op(); err != nil {
					failed.Store(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("operation failed: %v", err)
	}
	return float64(n.Load()) / time.Since(begin).Seconds()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// alternate runs a and b in alternating rounds (A B A B …) and returns
// the median of each.
func alternate(rounds int, a, b func() float64) (float64, float64) {
	var as, bs []float64
	for range rounds {
		as = append(as, a())
		bs = append(bs, b())
	}
	return median(as), median(bs)
}

func TestMain(m *testing.M) {
	code := m.Run()
	itest.CleanupStandin()
	os.Exit(code)
}

func TestBench(t *testing.T) {
	rounds, d, workers := 1, 200*time.Millisecond, 8
	if full() {
		rounds, d = 5, 3*time.Second
	}
	var figs []figure
	if want("P1") || want("P2") {
		figs = append(figs, p1p2(t, rounds, d, workers)...)
	}
	if want("P5") {
		figs = append(figs, p5(t, rounds)...)
	}
	if want("P4") {
		streams := 100
		if full() {
			streams = 10000
		}
		if n, err := strconv.Atoi(os.Getenv("HQD_BENCH_STREAMS")); err == nil && n > 0 {
			streams = n // another load for P4, with HQD_BENCH_ONLY=P4
		}
		figs = append(figs, p4(t, streams)...)
	}
	if want("P6") {
		figs = append(figs, p6(t, rounds, d, workers)...)
	}
	if want("P3") {
		figs = append(figs, p3(t)...)
	}
	if want("P7") {
		figs = append(figs, p7(t, rounds)...)
	}
	if want("P10") && (full() || os.Getenv("HQD_BENCH_ONLY") != "") {
		// (make test floods once already: cmd/hqd TestJobFlood.)
		figs = append(figs, p10(t, rounds)...)
	}
	if want("P11") {
		figs = append(figs, p11(t, min(rounds, 3))...)
	}
	for _, f := range figs {
		t.Logf("%s %-60s %10.2f %-6s ratio %.2f budget %s met %v %s", f.ID, f.Name, f.Value, f.Unit, f.Ratio, f.Budget, f.Met, f.Note)
	}
	if full() && os.Getenv("HQD_BENCH_ONLY") == "" {
		if err := write(figs); err != nil {
			t.Fatal(err)
		}
	}
}

// p1p2: 4 KiB raw GET and PUT through hqd on MinIO against the same Go
// client talking to MinIO directly, concurrency 8 (P1), and hqd's own
// share of those requests from its histogram (P2).
func p1p2(t *testing.T, rounds int, d time.Duration, workers int) []figure {
	var figs []figure
	// P1: 4 KiB raw GET and PUT through hqd on MinIO against the same Go
	// client talking to MinIO directly, concurrency 8.
	m := itest.StartMinIO(t)
	bucket := m.Bucket(t)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", itest.FreePort(t))
	p := start(t, "HQD_METRICS_ADDR="+metricsAddr, "HQD_STORAGE=s3", "HQD_BUCKET="+bucket, "HQD_S3_ENDPOINT="+m.Endpoint, "HQD_S3_PATH_STYLE=1",
		"AWS_ACCESS_KEY_ID="+m.AccessKey, "AWS_SECRET_ACCESS_KEY="+m.SecretKey, "HQD_AWS_REGION="+m.Region)
	tok := signIn(t, p.url)
	payload := bytes.Repeat([]byte("h"), 4096)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	hqdReq := func(method string, body []byte) error {
		req, _ := http.NewRequest(method, p.url+"/api/files/bench/4k.bin?raw=1", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s through hqd: %d", method, resp.StatusCode)
		}
		return nil
	}
	direct := m.Client()
	key := "direct/4k.bin"
	directPut := func() error {
		_, err := direct.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(payload)})
		return err
	}
	directGet := func() error {
		out, err := direct.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, out.Body)
		return out.Body.Close()
	}
	if err := hqdReq("PUT", payload); err != nil {
		t.Fatal(err)
	}
	if err := directPut(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		viaHQD    func() error
		viaDirect func() error
	}{
		{"GET", func() error { return hqdReq("GET", nil) }, directGet},
		{"PUT", func() error { return hqdReq("PUT", payload) }, directPut},
	} {
		// Where the CPU goes, per operation: hqd's, MinIO's, and the whole
		// machine's busy share, over the rounds through hqd.
		var ops, hqdCPU, minioCPU, busy, total float64
		viaHQD := func() float64 {
			h0, b0, t0 := itest.CPUTicks(t, p.cmd.Process.Pid)
			m0, _, _ := itest.CPUTicks(t, m.Pid())
			r := throughput(t, workers, d, c.viaHQD)
			h1, b1, t1 := itest.CPUTicks(t, p.cmd.Process.Pid)
			m1, _, _ := itest.CPUTicks(t, m.Pid())
			ops += r * d.Seconds()
			hqdCPU, minioCPU, busy, total = hqdCPU+float64(h1-h0), minioCPU+float64(m1-m0), busy+float64(b1-b0), total+float64(t1-t0)
			return r
		}
		h, dd := alternate(rounds, viaHQD, func() float64 { return throughput(t, workers, d, c.viaDirect) })
		r := h / dd
		figs = append(figs, figure{ID: "P1", Name: "4 KiB " + c.name + " through hqd vs MinIO direct (8 workers)", Budget: "≥ 0.9×",
			Value: h, Unit: "ops/s", Ratio: r, Met: r >= 0.9, Note: fmt.Sprintf("hqd %.0f ops/s, direct %.0f ops/s; through hqd, per operation: hqd %.0f µs of CPU, MinIO %.0f µs; machine %.0f%% busy",
				h, dd, hqdCPU*1e4/ops, minioCPU*1e4/ops, 100*busy/max(total, 1))})
	}

	// P2: hqd's own time per files request: its latency minus the store
	// call, from its own histogram, over all the P1 requests.
	for _, method := range []string{"GET", "PUT"} {
		p50, p99 := ownQuantiles(t, "http://"+metricsAddr+"/metrics", method)
		figs = append(figs,
			figure{ID: "P2", Name: "hqd's own time per files " + method + ", p50", Budget: "≤ 0.5 ms", Value: p50, Unit: "ms", Met: p50 <= 0.5},
			figure{ID: "P2", Name: "hqd's own time per files " + method + ", p99", Budget: "≤ 2 ms", Value: p99, Unit: "ms", Met: p99 <= 2})
	}

	return figs
}

// p5: idle resident memory and the time from start to READY.
func p5(t *testing.T, rounds int) []figure {
	var readies, rss []float64
	for range max(rounds, 3) {
		q := start(t)
		readies = append(readies, float64(q.ready.Microseconds())/1000)
		time.Sleep(time.Second)
		rss = append(rss, float64(itest.ResidentKB(t, q.cmd.Process.Pid))/1024)
		_ = q.cmd.Process.Kill()
	}
	r, mem := median(readies), median(rss)
	return []figure{
		{ID: "P5", Name: "start to READY (hqd dev)", Budget: "≤ 200 ms", Value: r, Unit: "ms", Met: r <= 200},
		{ID: "P5", Name: "idle resident memory (hqd dev)", Budget: "≤ 25 MB", Value: mem, Unit: "MB", Met: mem <= 25},
	}
}

// ownQuantiles reads hqd_http_own_duration_seconds for the files route and
// estimates p50 and p99 (ms) by interpolating within its buckets.
func ownQuantiles(t *testing.T, url, method string) (float64, float64) {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	type bucket struct{ le, count float64 }
	var bs []bucket
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "hqd_http_own_duration_seconds_bucket{") || !strings.Contains(l, `route="/api/files/*"`) || !strings.Contains(l, `method="`+method+`"`) {
			continue
		}
		i := strings.Index(l, `le="`)
		le := l[i+4 : i+4+strings.Index(l[i+4:], `"`)]
		f := strings.Fields(l)
		c, _ := strconv.ParseFloat(f[len(f)-1], 64)
		v, err := strconv.ParseFloat(le, 64)
		if le == "+Inf" || err != nil {
			v = 1
		}
		bs = append(bs, bucket{v, c})
	}
	if len(bs) == 0 || bs[len(bs)-1].count == 0 {
		t.Fatalf("no hqd_http_own_duration_seconds samples for %s", method)
	}
	total := bs[len(bs)-1].count
	q := func(p float64) float64 {
		want := p * total
		prevLe, prevC := 0.0, 0.0
		for _, x := range bs {
			if x.count >= want {
				frac := 0.0
				if x.count > prevC {
					frac = (want - prevC) / (x.count - prevC)
				}
				return (prevLe + frac*(x.le-prevLe)) * 1000
			}
			prevLe, prevC = x.le, x.count
		}
		return bs[len(bs)-1].le * 1000
	}
	return q(0.5), q(0.99)
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d vCPU %s, %s, Linux %s, %s", runtime.NumCPU(), cpu, memTotal(), strings.TrimSpace(string(kernel)), runtime.Version())
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return fmt.Sprintf("%.0f GB RAM", float64(kb)/1024/1024)
		}
	}
	return "unknown RAM"
}
