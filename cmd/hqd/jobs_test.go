package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// sseEvent is one event read off a stream.
type sseEvent struct {
	ID   int64
	Type string
	Data map[string]any
}

// stream opens a job's event stream and sends its events (and heartbeat
// comments, as Type ":") on the returned channel, closed at the end.
func stream(t testing.TB, url, bearer, lastID string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	ch := make(chan sseEvent, 1000)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, ": "):
				ch <- sseEvent{Type: ":"}
			case strings.HasPrefix(line, "id: "):
				ev.ID, _ = strconv.ParseInt(line[4:], 10, 64)
			case strings.HasPrefix(line, "event: "):
				ev.Type = line[7:]
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(line[6:]), &ev.Data)
			case line == "" && ev.Type != "":
				ch <- ev
				ev = sseEvent{}
			}
		}
	}()
	return ch, cancel
}

// until collects events up to and including done.
func until(t *testing.T, ch <-chan sseEvent, timeout time.Duration) []sseEvent {
	t.Helper()
	var out []sseEvent
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				checkEvents(t, out)
				return out
			}
			if ev.Type == ":" {
				continue
			}
			out = append(out, ev)
			if ev.Type == "done" {
				checkEvents(t, out)
				return out
			}
		case <-deadline:
			t.Fatalf("no done event within %s; got %d events", timeout, len(out))
		}
	}
}

type submittedJob struct {
	ID, Status, Events, Ticket string
}

func submit(t *testing.T, h *hqd, token, body string) (call, submittedJob) {
	t.Helper()
	a := do(t, "POST", h.URL+"/api/verify", token, strings.NewReader(body), "Content-Type", "application/json")
	var j submittedJob
	if a.status == 202 {
		a.decode(t, &j)
	}
	return a, j
}

func jobsHQD(t *testing.T, project string, extra ...string) *hqd {
	env := append([]string{"HQD_LAKE_BIN=" + itest.Standin(t), "HQD_VERIFIER_DIR=" + project,
		"HQD_JOB_TIMEOUT=3s", "HQD_JOB_MEMORY=64MiB", "HQD_JOB_PIDS=32"}, extra...)
	h := startHQD(t, env, "dev", "--addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--data-dir="+t.TempDir())
	h.waitReady()
	return h
}

func TestVerifyJobs(t *testing.T) {
	project := itest.LakeProject(t, map[string]map[string]any{
		"Proving.Basic":  {"transcript": "01-clean-build", "delayMs": 20},
		"Proving.Errors": {"transcript": "03-build-errors"},
		"Proving.Sorry":  {"transcript": "02-build-warnings-sorry"},
		"Standin.Hog":    {"action": "memory"},
		"Standin.Loop":   {"action": "loop"},
		"Standin.Crash":  {"action": "crash"},
		"lean:default":   {"transcript": "05-env-lean-errors"},
	})
	h := jobsHQD(t, project, "HQD_JOBS_MAX_RUNNING=4")
	alice := devSignIn(t, h, "alice@example.com", "Passw0rd!").AccessToken
	bob := devSignIn(t, h, "bob@example.com", "Passw0rd!").AccessToken

	ready := string(do(t, "GET", h.URL+"/readyz", "", nil).body)
	t.Logf("job isolation in /readyz: %s", grep(strings.ReplaceAll(ready, ",", ",\n"), "isolation"))
	if !strings.Contains(ready, `"isolation":"cgroup`) {
		t.Fatalf("jobs are not confined by cgroups here: %s", ready)
	}

	t.Run("a build streams to two subscribers and resumes", func(t *testing.T) {
		a, job := submit(t, h, alice, `{"target":"Proving.Basic"}`)
		if a.status != 202 || job.ID == "" || job.Status != "queued" || job.Events != "/api/jobs/"+job.ID+"/events" || job.Ticket == "" {
			t.Fatalf("POST /api/verify = %d %s", a.status, a.body)
		}
		one, stop1 := stream(t, h.URL+job.Events+"?ticket="+job.Ticket, "", "")
		defer stop1()
		two, stop2 := stream(t, h.URL+job.Events, alice, "")
		defer stop2()
		first := until(t, one, 10*time.Second)
		second := until(t, two, 10*time.Second)
		if len(first) != len(second) || len(first) < 10 {
			t.Fatalf("subscribers saw %d and %d events", len(first), len(second))
		}
		for i := range first {
			if first[i].ID != int64(i+1) || first[i].ID != second[i].ID || first[i].Type != second[i].Type {
				t.Fatalf("event %d differs: %+v %+v", i, first[i], second[i])
			}
		}
		done := first[len(first)-1].Data
		if done["ok"] != true || done["verified"] != true || done["exitCode"] != float64(0) || done["cached"] != false || done["cancelled"] != false || done["limit"] != "" {
			t.Errorf("done = %v", done)
		}
		var progress int
		for _, ev := range first {
			for _, k := range []string{"stage", "kind", "msg", "at"} {
				if _, ok := ev.Data[k]; !ok {
					t.Errorf("event %d lacks %s: %v", ev.ID, k, ev.Data)
				}
			}
			if ev.Type == "progress" {
				progress++
			}
		}
		if progress != 9 {
			t.Errorf("%d progress events, want 9", progress)
		}
		// Resuming after event 5 gives exactly the rest.
		rest, stop3 := stream(t, h.URL+job.Events, alice, "5")
		defer stop3()
		got := until(t, rest, 5*time.Second)
		if len(got) != len(first)-5 || got[0].ID != 6 {
			t.Errorf("resume after 5: %d events from %d, want %d from 6", len(got), got[0].ID, len(first)-5)
		}
		var st map[string]any
		do(t, "GET", h.URL+"/api/jobs/"+job.ID, alice, nil).decode(t, &st)
		if st["status"] != "done" || st["kind"] != "verify" || st["createdAt"] == nil || st["done"].(map[string]any)["verified"] != true {
			t.Errorf("status = %v", st)
		}
		// The same request again is a cache hit: replayed, no process.
		runsBefore := metric(t, h, "hqd_job_run_duration_seconds_count")
		_, again := submit(t, h, alice, `{"target":"Proving.Basic"}`)
		evs := until(t, mustStream(t, h, again, alice), 5*time.Second)
		d := evs[len(evs)-1].Data
		if d["cached"] != true || d["exitCode"] != nil || d["verified"] != true || len(evs) != len(first) {
			t.Errorf("cached replay: %d events, done %v", len(evs), d)
		}
		if after := metric(t, h, "hqd_job_run_duration_seconds_count"); after != runsBefore {
			t.Errorf("a cache hit started a process (%v → %v runs)", runsBefore, after)
		}
	})

	t.Run("verdicts", func(t *testing.T) {
		for _, tc := range []struct {
			body              string
			ok, verified      bool
			limit             string
			diagnostics, exit int
		}{
			{`{"target":"Proving.Errors"}`, false, false, "", 4, 1},
			{`{"target":"Proving.Sorry"}`, true, false, "", 3, 0},
			{`{"source":"theorem x : 2 + 2 = 5 := by decide"}`, false, false, "", 3, 1},
			{`{"target":"Standin.Hog"}`, false, false, "memory", 0, -1},
			{`{"target":"Standin.Loop"}`, false, false, "timeout", 0, 137},
			{`{"target":"Standin.Crash"}`, false, false, "", 0, 137},
		} {
			_, job := submit(t, h, bob, tc.body)
			evs := until(t, mustStream(t, h, job, bob), 15*time.Second)
			done := evs[len(evs)-1].Data
			diags := 0
			for _, ev := range evs {
				if ev.Type == "diagnostic" {
					diags++
				}
			}
			if done["ok"] != tc.ok || done["verified"] != tc.verified || done["limit"] != tc.limit || diags != tc.diagnostics ||
				(tc.exit >= 0 && done["exitCode"] != float64(tc.exit)) {
				t.Errorf("%s: done %v with %d diagnostics; want ok %v verified %v limit %q, %d diagnostics, exit %d",
					tc.body, done, diags, tc.ok, tc.verified, tc.limit, tc.diagnostics, tc.exit)
			}
		}
	})

	t.Run("jobs belong to their owner", func(t *testing.T) {
		_, job := submit(t, h, alice, `{"target":"Proving.Errors"}`)
		for _, a := range []call{
			do(t, "GET", h.URL+"/api/jobs/"+job.ID, bob, nil),
			do(t, "DELETE", h.URL+"/api/jobs/"+job.ID, bob, nil),
			do(t, "POST", h.URL+"/api/jobs/"+job.ID+"/ticket", bob, nil),
			do(t, "GET", h.URL+"/api/jobs/"+job.ID+"/events", bob, nil),
			do(t, "GET", h.URL+"/api/jobs/nope", alice, nil),
		} {
			if a.status != 404 || a.code() != "not_found" {
				t.Errorf("= %d %s, want 404", a.status, a.body)
			}
		}
		_, other := submit(t, h, bob, `{"target":"Proving.Errors"}`)
		for name, url := range map[string]string{
			"another job's ticket": h.URL + "/api/jobs/" + other.ID + "/events?ticket=" + job.Ticket,
			"a forged ticket":      h.URL + "/api/jobs/" + job.ID + "/events?ticket=" + job.Ticket[:len(job.Ticket)-4] + "AAAA",
			"garbage":              h.URL + "/api/jobs/" + job.ID + "/events?ticket=x",
		} {
			if a := do(t, "GET", url, "", nil); a.status != 401 || a.code() != "invalid_ticket" {
				t.Errorf("%s = %d %s, want 401", name, a.status, a.body)
			}
		}
		var fresh map[string]string
		do(t, "POST", h.URL+"/api/jobs/"+job.ID+"/ticket", alice, nil).decode(t, &fresh)
		if evs := until(t, streamOf(t, h.URL+job.Events+"?ticket="+fresh["ticket"]), 10*time.Second); len(evs) == 0 {
			t.Error("a fresh ticket opens no stream")
		}
	})

	t.Run("GET /api/jobs lists the caller's own jobs, newest first", func(t *testing.T) {
		carol := devSignIn(t, h, "carol@example.com", "Passw0rd!").AccessToken
		dave := devSignIn(t, h, "dave@example.com", "Passw0rd!").AccessToken
		_, first := submit(t, h, carol, `{"target":"Proving.Errors"}`)
		_, second := submit(t, h, carol, `{"source":"-- a check of carol's\n"}`)
		var list struct {
			Jobs []struct{ ID, Kind, Status, CreatedAt, Target string }
		}
		a := do(t, "GET", h.URL+"/api/jobs", carol, nil)
		a.decode(t, &list)
		if a.status != 200 || len(list.Jobs) != 2 || list.Jobs[0].ID != second.ID || list.Jobs[1].ID != first.ID ||
			list.Jobs[1].Target != "Proving.Errors" || list.Jobs[0].Target != "" || list.Jobs[0].Kind != "verify" || list.Jobs[0].CreatedAt == "" {
			t.Errorf("carol's jobs = %d %s", a.status, a.body)
		}
		if a := do(t, "GET", h.URL+"/api/jobs", dave, nil); a.status != 200 || string(a.body) != `{"jobs":[]}`+"\n" && string(a.body) != `{"jobs":[]}` {
			t.Errorf("dave sees %d %s", a.status, a.body)
		}
		if a := do(t, "GET", h.URL+"/api/jobs", "", nil); a.status != 401 {
			t.Errorf("without a token = %d", a.status)
		}
	})

	t.Run("disconnect does not cancel, DELETE does", func(t *testing.T) {
		_, job := submit(t, h, alice, `{"target":"Standin.Loop"}`)
		ch, stop := stream(t, h.URL+job.Events, alice, "")
		<-ch
		stop() // the client leaves
		time.Sleep(300 * time.Millisecond)
		var st map[string]any
		do(t, "GET", h.URL+"/api/jobs/"+job.ID, alice, nil).decode(t, &st)
		if st["status"] != "running" {
			t.Errorf("after the client left the job is %v", st["status"])
		}
		ch, stop = stream(t, h.URL+job.Events, alice, "")
		defer stop()
		if a := do(t, "DELETE", h.URL+"/api/jobs/"+job.ID, alice, nil); a.status != 204 {
			t.Fatalf("DELETE = %d", a.status)
		}
		evs := until(t, ch, 5*time.Second)
		if d := evs[len(evs)-1].Data; d["cancelled"] != true || d["ok"] != false {
			t.Errorf("done after DELETE = %v", d)
		}
	})

	t.Run("a heartbeat within 15 s of silence", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits 15 s")
		}
		h2 := jobsHQD(t, project, "HQD_JOB_TIMEOUT=20s")
		tok := devSignIn(t, h2, "quiet@example.com", "Passw0rd!").AccessToken
		_, job := submit(t, h2, tok, `{"target":"Standin.Loop"}`)
		ch, stop := stream(t, h2.URL+job.Events, tok, "")
		defer stop()
		deadline := time.After(16 * time.Second)
		for {
			select {
			case ev := <-ch:
				if ev.Type == ":" {
					do(t, "DELETE", h2.URL+"/api/jobs/"+job.ID, tok, nil)
					return
				}
			case <-deadline:
				t.Fatal("no heartbeat within 16 s")
			}
		}
	})
}

func mustStream(t *testing.T, h *hqd, job submittedJob, token string) <-chan sseEvent {
	t.Helper()
	if job.ID == "" {
		t.Fatal("no job")
	}
	ch, stop := stream(t, h.URL+job.Events, token, "")
	t.Cleanup(stop)
	return ch
}

func streamOf(t *testing.T, url string) <-chan sseEvent {
	ch, stop := stream(t, url, "", "")
	t.Cleanup(stop)
	return ch
}

// metric reads one unlabelled sample from the metrics listener.
func metric(t testing.TB, h *hqd, name string) float64 {
	t.Helper()
	for _, l := range strings.Split(string(do(t, "GET", h.MetricsURL+"/metrics", "", nil).body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func TestJobLimitsAndRefusals(t *testing.T) {
	project := itest.LakeProject(t, map[string]map[string]any{
		"Proving.Basic": {"transcript": "01-clean-build"},
		"Standin.L1":    {"action": "loop"}, "Standin.L2": {"action": "loop"}, "Standin.L3": {"action": "loop"},
	})
	h := jobsHQD(t, project, "HQD_JOBS_MAX_RUNNING=1", "HQD_JOBS_MAX_QUEUED=1", "HQD_JOBS_MAX_PER_USER=2", "HQD_JOB_TIMEOUT=20s")
	carol := devSignIn(t, h, "carol@example.com", "Passw0rd!").AccessToken
	dave := devSignIn(t, h, "dave@example.com", "Passw0rd!").AccessToken
	erin := devSignIn(t, h, "erin@example.com", "Passw0rd!").AccessToken

	_, running := submit(t, h, carol, `{"target":"Standin.L1"}`)
	a, queued := submit(t, h, carol, `{"target":"Standin.L2"}`)
	if a.status != 202 {
		t.Fatalf("second job = %d %s", a.status, a.body)
	}
	var st map[string]any
	do(t, "GET", h.URL+"/api/jobs/"+queued.ID, carol, nil).decode(t, &st)
	if st["status"] != "queued" || st["position"] != float64(1) {
		t.Errorf("queued job status = %v", st)
	}
	if a, _ := submit(t, h, carol, `{"target":"Proving.Basic"}`); a.status != 429 || a.code() != "too_many_jobs" || a.header.Get("Retry-After") == "" {
		t.Errorf("third job of one user = %d %s, want 429 too_many_jobs", a.status, a.body)
	}
	if a, _ := submit(t, h, dave, `{"target":"Standin.L3"}`); a.status != 429 || a.code() != "queue_full" || a.header.Get("Retry-After") == "" {
		t.Errorf("job past a full queue = %d %s, want 429 queue_full", a.status, a.body)
	}
	// An identical request shares the queued run instead of queueing again.
	if a, _ := submit(t, h, erin, `{"target":"Standin.L2"}`); a.status != 202 {
		t.Errorf("an identical request with the queue full = %d %s", a.status, a.body)
	}
	// Cancelling a queued job takes it off the queue; cancelling the running one frees the slot.
	do(t, "DELETE", h.URL+"/api/jobs/"+running.ID, carol, nil)
	do(t, "DELETE", h.URL+"/api/jobs/"+queued.ID, carol, nil)

	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"unknown target", `{"target":"Proving.Nope"}`, 422, "unknown_target"},
		{"path-like target", `{"target":"../../etc/passwd"}`, 422, "unknown_target"},
		{"target with a slash", `{"target":"Proving/Basic"}`, 422, "unknown_target"},
		{"both", `{"target":"Proving.Basic","source":"x"}`, 400, "invalid_request"},
		{"neither", `{}`, 400, "invalid_request"},
		{"unknown field", `{"target":"Proving.Basic","fast":true}`, 400, "invalid_request"},
		{"wrong type", `{"target":5}`, 400, "invalid_request"},
		{"trailing data", `{"target":"Proving.Basic"} []`, 400, "invalid_request"},
		{"not UTF-8", "{\"source\":\"\xff\xfe\"}", 400, "invalid_request"},
		{"source over 1 MiB", `{"source":"` + strings.Repeat("a", 1<<20+1) + `"}`, 413, "source_too_large"},
	} {
		if a, _ := submit(t, h, erin, tc.body); a.status != tc.status || a.code() != tc.code {
			t.Errorf("%s = %d %s, want %d %s", tc.name, a.status, a.body, tc.status, tc.code)
		}
	}
}

func TestJobsUnavailable(t *testing.T) {
	notLake := t.TempDir()
	for name, env := range map[string][]string{
		"missing lake binary": {"HQD_LAKE_BIN=/nonexistent/lake", "HQD_VERIFIER_DIR=" + itest.LakeProject(t, map[string]map[string]any{"Proving.Basic": {}})},
		"not a Lake project":  {"HQD_LAKE_BIN=" + itest.Standin(t), "HQD_VERIFIER_DIR=" + notLake},
		"no verifier dir":     {"HQD_LAKE_BIN=" + itest.Standin(t)},
	} {
		t.Run(name, func(t *testing.T) {
			h := startHQD(t, env, "dev", "--addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--data-dir="+t.TempDir())
			h.waitReady()
			tok := devSignIn(t, h, "u@example.com", "Passw0rd!").AccessToken
			a, _ := submit(t, h, tok, `{"source":"theorem t : True := trivial"}`)
			if a.status != 503 || a.code() != "jobs_unavailable" || a.header.Get("Retry-After") == "" {
				t.Errorf("= %d %s, want 503 jobs_unavailable", a.status, a.body)
			}
			// The reason is the operator's (log), not the user's: no paths, no settings.
			if b := string(a.body); strings.Contains(b, "HQD_") || strings.Contains(b, "/nonexistent") || strings.Contains(b, os.TempDir()) {
				t.Errorf("the answer names the host's settings or paths: %s", b)
			}
			if !h.logged(`"code":"jobs_unavailable"`) {
				t.Errorf("the reason is not in the log:\n%s", h.Stdout())
			}
			r := do(t, "GET", h.URL+"/readyz", "", nil)
			if r.status != 200 || !strings.Contains(string(r.body), `"jobs":{"ok":false`) {
				t.Errorf("/readyz = %d %s: jobs are reported, never failing readiness", r.status, r.body)
			}
			if b := string(r.body); strings.Contains(b, "HQD_") || strings.Contains(b, "/nonexistent") || strings.Contains(b, os.TempDir()) {
				t.Errorf("the public /readyz names the host's settings or paths: %s", b)
			}
			// The metrics listener tells the operator the whole story.
			if d := string(do(t, "GET", h.MetricsURL+"/readyz", "", nil).body); !strings.Contains(d, "HQD_LAKE_BIN=") {
				t.Errorf("the metrics listener's /readyz lacks the details: %s", d)
			}
			fmt.Fprint(io.Discard, name)
		})
	}
}
