package bench

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// floodLines is what the stand-in's flood action prints: 150 MB.
const floodLines = 1_500_000

// p10 measures a job that prints as fast as it can (issue 14): lines per
// second from the stand-in's first byte to the stream's done event through
// hqd (sandbox, classification, the event log, SSE), beside a plain pipe
// reader of the same process, and hqd's peak resident memory meanwhile.
func p10(t *testing.T, rounds int) []figure {
	bin := itest.Standin(t)
	project := itest.LakeProject(t, map[string]map[string]any{"Standin.Flood": {"action": "flood"}})
	p := start(t, "HQD_LAKE_BIN="+bin, "HQD_VERIFIER_DIR="+project, "HQD_JOB_TIMEOUT=120s", "HQD_JOB_MEMORY=512MiB", "HQD_JOBS_MAX_PER_USER=1000")
	tok := signIn(t, p.url)
	through := func() float64 {
		begin := time.Now()
		resp := openEvents(t, submitJob(t, p.url, tok, `{"target":"Standin.Flood"}`), tok)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if sc.Text() == "event: done" {
				return floodLines / time.Since(begin).Seconds()
			}
		}
		t.Fatalf("no done event in the flood's stream")
		return 0
	}
	plain := func() float64 {
		begin := time.Now()
		cmd := exec.Command(bin, "build", "Standin.Flood")
		cmd.Dir = project
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			n++
		}
		_ = cmd.Wait()
		if n != floodLines {
			t.Fatalf("the plain reader got %d lines", n)
		}
		return floodLines / time.Since(begin).Seconds()
	}
	hqd, pipe := alternate(max(rounds, 1), through, plain)
	peak := peakMB(t, p.cmd.Process.Pid)
	return []figure{
		{ID: "P10", Name: "a job printing 150 MB at full speed, end to end", Budget: "≥ 100,000 lines/s", Value: hqd / 1000, Unit: "k lines/s", Met: hqd >= 100_000,
			Ratio: hqd / pipe, Note: fmt.Sprintf("a plain pipe reader of the same process: %.0fk lines/s", pipe/1000)},
		{ID: "P10", Name: "hqd's peak resident memory during those runs", Budget: "≤ 200 MiB", Value: peak, Unit: "MiB", Met: peak <= 200},
	}
}

// peakMB is a process's peak resident memory (VmHWM) in MiB.
func peakMB(t *testing.T, pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb / 1024
		}
	}
	return 0
}

// submitJob posts a verify job and answers its events URL.
func submitJob(t *testing.T, base, tok, body string) string {
	req, _ := http.NewRequest("POST", base+"/api/verify", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	i := strings.Index(string(b), `"id":"`)
	if i < 0 {
		t.Fatalf("POST /api/verify: %s", b)
	}
	return base + "/api/jobs/" + strings.SplitN(string(b[i+6:]), `"`, 2)[0] + "/events"
}

// openEvents opens an event stream with a bearer token.
func openEvents(t *testing.T, url, tok string) *http.Response {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
