package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// sseRun is one server ready to stream one run's lines to many clients:
// start begins the run (its first line comes after a wait long enough for
// every stream to attach), events is the stream's URL.
type sseRun struct {
	pid   int
	token string        // a bearer token, if the server wants one
	start func() string // returns the events URL
}

// p4 opens n SSE streams on one job and measures hqd's resident memory
// per stream, then, with them open, the time from a line written by the
// child to its arrival at one more client (budgets 20 KB, p99 2 ms). The
// same is measured, in turn, on a plain net/http SSE server (ssepeer) that
// makes the same lines in-process: the floor for this machine.
func p4(t *testing.T, n int) []figure {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) // the servers inherit it
	}
	// The child waits before it prints, so every stream is open in time.
	wait := 2000 + n*3
	hqdKB, hqdP99, hqdNote := measureStreams(t, hqdRun(t, wait), n)
	peerKB, peerP99, peerNote := measureStreams(t, peerRun(t, wait), n)
	return []figure{
		{ID: "P4", Name: fmt.Sprintf("hqd memory per SSE stream, %d streams on one job", n), Budget: "≤ 20 KB", Value: hqdKB, Unit: "KB", Met: hqdKB <= 20,
			Note: fmt.Sprintf("plain net/http SSE: %.1f KB", peerKB)},
		{ID: "P4", Name: fmt.Sprintf("child line → client, p99, with %d streams open", n), Budget: "≤ 2 ms", Value: hqdP99, Unit: "ms", Met: hqdP99 <= 2,
			Note: fmt.Sprintf("hqd: %s. Plain net/http SSE, lines made in-process: p99 %.1f ms; %s", hqdNote, peerP99, peerNote)},
	}
}

// hqdRun is a verifier job of the stand-in's "ticks": 400 stamped lines,
// 5 ms apart, after wait ms.
func hqdRun(t *testing.T, wait int) sseRun {
	project := itest.LakeProject(t, map[string]map[string]any{"lean:ticks": {"action": "ticks", "delayMs": wait}})
	p := start(t, "HQD_LAKE_BIN="+itest.Standin(t), "HQD_VERIFIER_DIR="+project, "HQD_JOB_TIMEOUT=600s", "HQD_JOBS_MAX_PER_USER=1000")
	tok := signIn(t, p.url)
	return sseRun{pid: p.cmd.Process.Pid, token: tok, start: func() string {
		return submitJob(t, p.url, tok, fmt.Sprintf(`{"source":"-- standin: ticks\n-- %d\n"}`, time.Now().UnixNano()))
	}}
}

// peerRun is ssepeer, built from bench/ssepeer and started here.
func peerRun(t *testing.T, wait int) sseRun {
	bin := filepath.Join(t.TempDir(), "ssepeer")
	build := exec.Command("go", "build", "-o", bin, "./ssepeer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building ssepeer: %v\n%s", err, out)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", itest.FreePort(t))
	cmd := exec.Command(bin, "-addr", strings.TrimPrefix(url, "http://"), "-wait", fmt.Sprintf("%dms", wait))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for range 100 {
		if resp, err := http.Get(url + "/"); err == nil { // any answer: it listens
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return sseRun{pid: cmd.Process.Pid, start: func() string {
		resp, err := http.Post(url+"/start", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return url + "/events"
	}}
}

// measureStreams opens n streams on run, reads the server's resident
// memory before and after, then times each stamped line's arrival at one
// more client. It returns KB per stream, the p99 in ms and a note.
func measureStreams(t *testing.T, run sseRun, n int) (float64, float64, string) {
	events := run.start()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n + 10, MaxConnsPerHost: 0}}
	get := func(ctx context.Context) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "GET", events, nil)
		if run.token != "" {
			req.Header.Set("Authorization", "Bearer "+run.token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("opening stream: %v", err)
		}
		return resp
	}
	before := itest.ResidentKB(t, run.pid)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range n {
		resp := get(ctx)
		go func() { _, _ = io.Copy(io.Discard, resp.Body); resp.Body.Close() }()
	}
	time.Sleep(time.Second) // let the last streams settle
	after := itest.ResidentKB(t, run.pid)
	perStream := float64(after-before) / float64(n)

	// One more client measures arrival times while the others are open;
	// the server's CPU time and the machine's over the same span say what
	// bounds them.
	var cpu0, busy0, total0 int64
	resp := get(ctx)
	defer resp.Body.Close()
	var lat []float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "info: tick "); i >= 0 {
			ns, _ := strconv.ParseInt(strings.TrimRight(strings.SplitN(line[i+11:], `"`, 2)[0], " "), 10, 64)
			if len(lat) == 0 { // the span measured starts with the first line
				cpu0, busy0, total0 = itest.CPUTicks(t, run.pid)
			}
			if ns > 0 {
				lat = append(lat, float64(time.Since(time.Unix(0, ns)).Microseconds())/1000)
			}
		}
		if strings.HasPrefix(line, "event: done") {
			break
		}
	}
	cpu1, busy1, total1 := itest.CPUTicks(t, run.pid)
	if len(lat) == 0 {
		t.Fatal("no stamped lines arrived")
	}
	slices.Sort(lat)
	// Each line goes to n+1 streams: one write system call each.
	perEvent := float64(cpu1-cpu0) / 100 / float64(max(len(lat)-1, 1)*(n+1)) * 1e6
	note := fmt.Sprintf("RSS %.0f → %.0f MB, %.1f µs of server CPU per event delivered (%.1f ms per line to every stream), machine %.0f%% busy",
		float64(before)/1024, float64(after)/1024, perEvent, perEvent*float64(n+1)/1000, 100*float64(busy1-busy0)/float64(max(total1-total0, 1)))
	return perStream, lat[len(lat)*99/100], note
}
