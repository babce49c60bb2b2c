package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/lake"
)

// lines is a Runner that prints n lines of size bytes and succeeds.
type lines struct{ n, size int }

func (l lines) Run(_ context.Context, _ lake.Spec, line func(stream, text string)) (lake.Outcome, error) {
	for i := range l.n {
		line("stdout", fmt.Sprintf("info: %d %s", i, strings.Repeat("x", l.size)))
	}
	code := 0
	return lake.Outcome{ExitCode: &code, Duration: time.Millisecond}, nil
}

func manager(t *testing.T, cfg Config, r Runner) *Manager {
	t.Helper()
	cache, err := lake.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(cfg, r, cache, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	t.Cleanup(m.Close)
	return m
}

// wait waits for job's done event.
func wait(t *testing.T, j *Job) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		_, closed, changed := j.Log.Since(0)
		if closed {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("job %s never ended", j.ID)
		}
	}
}

// TestCacheHitsCountAsActive: a cache hit is one of its user's active
// jobs until a stream has delivered it (or it is cancelled), so replays
// cannot pile up faster than anyone reads them.
func TestCacheHitsCountAsActive(t *testing.T) {
	m := manager(t, Config{MaxRunning: 2, MaxQueued: 4, MaxPerUser: 2}, lines{n: 3})
	req := Request{Kind: "verify", Owner: "alice", Key: "k1"}
	first, err := m.Submit(req)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, first)
	var hits []*Job
	for range 2 {
		j, err := m.Submit(req)
		if err != nil {
			t.Fatalf("cache hit: %v", err)
		}
		if s := m.Status(j); s.Done["cached"] != true {
			t.Fatalf("not a cache hit: %+v", s)
		}
		hits = append(hits, j)
	}
	if _, err := m.Submit(req); !errors.Is(err, ErrTooManyJobs) {
		t.Fatalf("a third undelivered replay: %v, want ErrTooManyJobs", err)
	}
	if _, err := m.Submit(Request{Kind: "verify", Owner: "bob", Key: "k1"}); err != nil {
		t.Errorf("another user's replay: %v", err)
	}
	m.Delivered(hits[0])
	if err := m.Cancel("alice", hits[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Submit(req); err != nil {
		t.Errorf("after one delivery and one cancel: %v", err)
	}
}

// TestRunOutputBounded: past LogLimit a run's events are not kept, the
// stream says so once and ends with done, and the run is not cached.
func TestRunOutputBounded(t *testing.T) {
	m := manager(t, Config{MaxRunning: 1, MaxQueued: 1, MaxPerUser: 4, LogLimit: 64 << 10}, lines{n: 20000, size: 100})
	req := Request{Kind: "verify", Owner: "alice", Key: "flood"}
	j, err := m.Submit(req)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, j)
	evs := j.Log.Events()
	if got := evs[len(evs)-1].Type; got != "done" {
		t.Fatalf("the last event is %s", got)
	}
	if j.Log.Size() > 80<<10 || !strings.Contains(string(evs[len(evs)-2].Data), "the rest of the output is not kept") {
		t.Errorf("kept %d bytes in %d events; the last but one: %s", j.Log.Size(), len(evs), evs[len(evs)-2].Data)
	}
	again, err := m.Submit(req)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, again)
	if m.Status(again).Done["cached"] == true {
		t.Error("a run whose events were cut was cached")
	}
}

// TestRetainedBounded: finished jobs together keep at most RetainLimit
// bytes of events; the oldest are forgotten first.
func TestRetainedBounded(t *testing.T) {
	m := manager(t, Config{MaxRunning: 1, MaxQueued: 8, MaxPerUser: 100, LogLimit: 64 << 10, RetainLimit: 200 << 10}, lines{n: 400, size: 100})
	var jobs []*Job
	for i := range 8 {
		j, err := m.Submit(Request{Kind: "verify", Owner: "alice", Key: fmt.Sprint("k", i)})
		if err != nil {
			t.Fatal(err)
		}
		wait(t, j)
		m.Delivered(j)
		jobs = append(jobs, j)
	}
	if _, err := m.Get("alice", jobs[0].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("the oldest job is still kept: %v", err)
	}
	if _, err := m.Get("alice", jobs[7].ID); err != nil {
		t.Errorf("the newest job is gone: %v", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.retained > 200<<10 {
		t.Errorf("finished jobs keep %d bytes", m.retained)
	}
}
