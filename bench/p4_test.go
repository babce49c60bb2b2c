package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// p4 opens n SSE streams on one job and measures hqd's resident memory
// per stream, then, with them open, the time from a line written by the
// child to its arrival at one more client (budgets 20 KB, p99 2 ms).
func p4(t *testing.T, n int) []figure {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) // hqd inherits it
	}
	// The child waits before it prints, so every stream is open in time.
	wait := 2000 + n*3
	project := itest.LakeProject(t, map[string]map[string]any{"lean:ticks": {"action": "ticks", "delayMs": wait}})
	p := start(t, "HQD_LAKE_BIN="+itest.Standin(t), "HQD_VERIFIER_DIR="+project, "HQD_JOB_TIMEOUT=600s", "HQD_JOBS_MAX_PER_USER=1000")
	tok := signIn(t, p.url)
	post := func(body string) string {
		req, _ := http.NewRequest("POST", p.url+"/api/verify", strings.NewReader(body))
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
		return strings.SplitN(string(b[i+6:]), `"`, 2)[0]
	}
	// A job that prints 400 stamped lines over 2 s; streams attach first.
	id := post(fmt.Sprintf(`{"source":"-- standin: ticks\n-- %d\n"}`, time.Now().UnixNano()))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n + 10, MaxConnsPerHost: 0}}
	open := func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", p.url+"/api/jobs/"+id+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("opening stream: %v", err)
		}
		go func() { _, _ = io.Copy(io.Discard, resp.Body); resp.Body.Close() }()
		return cancel
	}
	before := residentKB(t, p.cmd.Process.Pid)
	var stops []func()
	for range n {
		stops = append(stops, open())
	}
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	time.Sleep(time.Second) // let the last streams settle
	after := residentKB(t, p.cmd.Process.Pid)
	perStream := float64(after-before) / float64(n)

	// One more client measures arrival times while the others are open.
	req, _ := http.NewRequest("GET", p.url+"/api/jobs/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lat []float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "info: tick "); i >= 0 {
			ns, _ := strconv.ParseInt(strings.TrimRight(strings.SplitN(line[i+11:], `"`, 2)[0], " "), 10, 64)
			if ns > 0 {
				lat = append(lat, float64(time.Since(time.Unix(0, ns)).Microseconds())/1000)
			}
		}
		if strings.HasPrefix(line, "event: done") {
			break
		}
	}
	if len(lat) == 0 {
		t.Fatal("no stamped lines arrived")
	}
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	return []figure{
		{ID: "P4", Name: fmt.Sprintf("hqd memory per SSE stream, %d streams on one job", n), Budget: "≤ 20 KB", Value: perStream, Unit: "KB", Met: perStream <= 20,
			Note: fmt.Sprintf("RSS %.0f → %.0f MB", float64(before)/1024, float64(after)/1024)},
		{ID: "P4", Name: fmt.Sprintf("child line → client, p99, with %d streams open", n), Budget: "≤ 2 ms", Value: p99, Unit: "ms", Met: p99 <= 2},
	}
}
