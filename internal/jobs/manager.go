// Package jobs owns the verifier's (and evaluator's) jobs: the queue with
// its limits, the jobs of each user, the runs they share, the result cache,
// and the routes of SPEC §6.1. It runs lake through a Runner and streams
// each job's events through an sse.Log.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quantapix/hqd/internal/lake"
	"github.com/quantapix/hqd/internal/sse"
)

// Runner runs one lake process; *lake.Runner is one.
type Runner interface {
	Run(ctx context.Context, spec lake.Spec, line func(stream, text string)) (lake.Outcome, error)
}

var _ Runner = (*lake.Runner)(nil)

// Config configures the manager.
type Config struct {
	MaxRunning, MaxQueued, MaxPerUser int
	Retention                         time.Duration // finished jobs are kept this long for replay
	LogLimit                          int           // bytes of events kept per job (and per run)
	RetainLimit                       int           // bytes of events kept by all finished jobs; the oldest go first
	CacheLimit                        int64         // bytes of cached results kept; 1 GiB when zero
}

// Outcomes callers branch on.
var (
	ErrQueueFull   = errors.New("the job queue is full")
	ErrTooManyJobs = errors.New("too many active jobs")
	ErrNotFound    = errors.New("no such job")
)

// Request is what a job runs.
type Request struct {
	Kind  string // "verify" or "evaluate"
	Owner string // the user's sub
	Key   string // cache key: identical requests share a run and its result
	Spec  lake.Spec
	Mode  lake.Mode
	// What the job is about, as GET /api/jobs names it: the verifier's
	// target (none for a source check) or the evaluator's strategy.
	Target, Strategy string
	// Verified decides done.verified from ok and the output's verdict.
	Verified func(ok bool, errors int, sorry bool) bool
}

// Job is one user's request. Several jobs may share one run.
type Job struct {
	ID               string
	Kind             string
	Owner            string
	Target, Strategy string
	Created          time.Time
	Log              *sse.Log

	// guarded by Manager.mu
	run       *run
	status    string // queued, running, done
	done      lake.Event
	ended     time.Time
	cancelled bool
	// undelivered: a cache hit whose replay no stream has sent to its end
	// yet. It counts as active (HQD_JOBS_MAX_PER_USER), or a user could
	// pile up replays faster than anyone reads them.
	undelivered bool
}

// run is one lake process (or one cache replay) and the jobs attached to it.
type run struct {
	req       Request
	jobs      []*Job
	events    []encoded // for jobs that attach late, and the cache
	size      int       // bytes of events
	truncated bool      // events past LogLimit were not kept: not cached
	cancel    context.CancelFunc
	started   bool
}

// encoded is an event as it was encoded once, when it happened.
type encoded struct {
	kind string
	data []byte
}

// Manager queues and runs jobs.
type Manager struct {
	cfg    Config
	runner Runner
	cache  *lake.Cache
	log    *slog.Logger

	mu       sync.Mutex
	jobs     map[string]*Job
	ended    []*Job          // finished jobs, oldest first
	retained int             // bytes of events the finished jobs keep
	runs     map[string]*run // in flight, by key
	queue    []*run
	running  int
	closed   bool
	wg       sync.WaitGroup

	queued, active prometheus.Gauge
	outcomes       *prometheus.CounterVec
	durations      prometheus.Histogram
}

// NewManager makes a manager; Close stops it.
func NewManager(cfg Config, runner Runner, cache *lake.Cache, log *slog.Logger, reg prometheus.Registerer) *Manager {
	if cfg.Retention == 0 {
		cfg.Retention = 15 * time.Minute
	}
	if cfg.LogLimit == 0 {
		cfg.LogLimit = 8 << 20
	}
	if cfg.CacheLimit == 0 {
		cfg.CacheLimit = 1 << 30
	}
	if cfg.RetainLimit == 0 {
		cfg.RetainLimit = 64 << 20
	}
	m := &Manager{
		cfg: cfg, runner: runner, cache: cache, log: log.With("pkg", "jobs"),
		jobs: map[string]*Job{}, runs: map[string]*run{},
		queued:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "hqd_jobs_queued", Help: "Runs waiting for a slot."}),
		active:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "hqd_jobs_running", Help: "Runs in progress."}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hqd_jobs_total", Help: "Finished jobs by kind and outcome (ok, failed, cancelled, cached, timeout, memory, pids, error)."}, []string{"kind", "outcome"}),
		durations: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hqd_job_run_duration_seconds", Help: "How long runs of lake took.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}}),
	}
	if reg != nil {
		reg.MustRegister(m.queued, m.active, m.outcomes, m.durations)
	}
	return m
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return idEncoding.EncodeToString(b[:])
}

// Submit makes a job: a replay of a cached result, a share of an identical
// run in flight, or a new run (queued when all slots are busy).
func (m *Manager) Submit(req Request) (*Job, error) {
	if err := m.admit(req.Owner); err != nil {
		return nil, err
	}
	job := &Job{ID: newID(), Kind: req.Kind, Owner: req.Owner, Target: req.Target, Strategy: req.Strategy,
		Created: time.Now().UTC(), Log: sse.NewLog(m.cfg.LogLimit), status: "queued"}
	// A cached result is read and replayed into the new job's own log
	// without the lock: it may be megabytes.
	cached, hit := m.cache.Get(req.Key)
	if hit {
		for _, ev := range cached.Events {
			job.Log.Append(lake.EventKind(ev), ev)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.admitLocked(req.Owner); err != nil {
		return nil, err
	}
	r, shared := m.runs[req.Key]
	if hit && !shared {
		m.jobs[job.ID] = job
		d := lake.DoneOf(cached.Done)
		d.Cached, d.ExitCode = true, nil // no process ran for this job
		m.finish(job, d.Event())
		job.undelivered = true
		m.outcomes.WithLabelValues(req.Kind, "cached").Inc()
		return job, nil
	}
	if hit {
		job.Log = sse.NewLog(m.cfg.LogLimit) // the run in flight is newer than the cache: share it
	}
	if !shared {
		if len(m.queue) >= m.cfg.MaxQueued && m.running >= m.cfg.MaxRunning {
			return nil, ErrQueueFull
		}
		r = &run{req: req}
		m.runs[req.Key] = r
	}
	m.jobs[job.ID] = job
	m.attach(job, r)
	if !shared {
		if m.running < m.cfg.MaxRunning {
			m.start(r)
		} else {
			m.queue = append(m.queue, r)
			m.queued.Set(float64(len(m.queue)))
			m.publish(r, m.queuedEvent(r))
		}
	}
	return job, nil
}

func (m *Manager) admit(owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.admitLocked(owner)
}

// admitLocked refuses a new job of owner when the manager is closing or
// owner has the most active jobs allowed. m.mu is held.
func (m *Manager) admitLocked(owner string) error {
	if m.closed {
		return errors.New("shutting down")
	}
	active := 0
	for _, j := range m.jobs {
		if j.Owner == owner && (j.status != "done" || j.undelivered) {
			active++
		}
	}
	if active >= m.cfg.MaxPerUser {
		return ErrTooManyJobs
	}
	return nil
}

// Delivered records that a stream sent job's events to their end: a
// cache hit stops counting as active.
func (m *Manager) Delivered(j *Job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j.undelivered = false
}

// attach adds job to r and gives it r's events so far.
func (m *Manager) attach(job *Job, r *run) {
	job.run = r
	r.jobs = append(r.jobs, job)
	if r.started {
		job.status = "running"
	}
	for _, ev := range r.events {
		job.Log.Append(ev.kind, ev.data)
	}
}

func (m *Manager) position(r *run) int {
	for i, q := range m.queue {
		if q == r {
			return i + 1
		}
	}
	return 0
}

func (m *Manager) queuedEvent(r *run) lake.Event {
	ev := lake.NewEvent("queued", "status", "waiting for a free slot")
	ev["position"] = m.position(r)
	return ev
}

// publish sends ev to every job of r; m.mu or the run's own sequencing
// guards it. Past LogLimit bytes of events, a run's output is no longer
// kept (nor encoded): one warning says so, and the run is not cached.
func (m *Manager) publish(r *run, ev lake.Event) {
	if r.truncated {
		return
	}
	ev.Relative(r.req.Spec.Dir)
	b := ev.JSON()
	if r.size+len(b) > m.cfg.LogLimit {
		r.truncated = true
		stage, _ := ev["stage"].(string)
		ev = lake.NewEvent(stage, "log", fmt.Sprintf("the rest of the output is not kept: more than %d MiB of events", m.cfg.LogLimit>>20))
		ev["level"] = "warning"
		b = ev.JSON()
		r.events = append(r.events, encoded{ev.Kind(), b})
		for _, j := range r.jobs {
			j.Log.Must(ev.Kind(), b)
		}
		return
	}
	r.size += len(b)
	r.events = append(r.events, encoded{ev.Kind(), b})
	for _, j := range r.jobs {
		j.Log.Append(ev.Kind(), b)
	}
}

// start runs r in its own goroutine. m.mu is held.
func (m *Manager) start(r *run) {
	m.running++
	m.active.Set(float64(m.running))
	r.started = true
	for _, j := range r.jobs {
		j.status = "running"
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	m.publish(r, lake.NewEvent("build", "status", "started"))
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.execute(ctx, r)
	}()
}

// execute runs lake for r and finishes its jobs.
func (m *Manager) execute(ctx context.Context, r *run) {
	defer r.cancel()
	asm := lake.NewAssembler(r.req.Mode, func(ev lake.Event) {
		m.mu.Lock()
		m.publish(r, ev)
		m.mu.Unlock()
	})
	out, err := m.runner.Run(ctx, r.req.Spec, asm.Line)
	asm.Flush()
	m.durations.Observe(out.Duration.Seconds())

	ok := err == nil && out.Limit == "" && !out.Cancelled && out.ExitCode != nil && *out.ExitCode == 0
	errs, sorry := asm.Verdict()
	verified := ok
	if r.req.Verified != nil {
		verified = r.req.Verified(ok, errs, sorry)
	}
	d := lake.Done{OK: ok, Verified: verified, ExitCode: out.ExitCode, DurationMs: out.Duration.Milliseconds(),
		Cancelled: out.Cancelled, Limit: out.Limit}
	switch {
	case err != nil:
		m.log.Error("job run failed to start", "kind", r.req.Kind, "err", err)
		d.Msg = "the run could not start"
	case out.Limit != "":
		d.Msg = "killed: " + out.Limit + " limit"
	case out.Cancelled:
		d.Msg = "cancelled"
	case verified:
		d.Msg = "verified"
	case ok:
		d.Msg = "succeeded"
	default:
		d.Msg = "failed"
		if out.ExitCode != nil {
			d.Msg = fmt.Sprintf("failed (exit code %d)", *out.ExitCode)
		}
	}
	done := d.Event()
	outcome := map[bool]string{true: "ok", false: "failed"}[ok]
	if out.Limit != "" {
		outcome = out.Limit
	} else if out.Cancelled {
		outcome = "cancelled"
	} else if err != nil {
		outcome = "error"
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	// One critical section: cache the result, leave the in-flight table,
	// and end every job, so an identical request either shares this run or
	// finds its result.
	signaled := out.ExitCode != nil && *out.ExitCode > 128
	if err == nil && out.Limit == "" && !out.Cancelled && !signaled && !r.truncated {
		evs := make([]json.RawMessage, len(r.events))
		for i, ev := range r.events {
			evs[i] = ev.data
		}
		if cerr := m.cache.Put(r.req.Key, &lake.Cached{Events: evs, Done: done}); cerr != nil {
			m.log.Warn("caching a result", "err", cerr)
		}
	}
	delete(m.runs, r.req.Key)
	for _, j := range r.jobs {
		m.finish(j, done)
		m.outcomes.WithLabelValues(r.req.Kind, outcome).Inc()
	}
	r.jobs = nil
	m.running--
	m.active.Set(float64(m.running))
	m.next()
}

// next starts queued runs while slots are free. m.mu is held.
func (m *Manager) next() {
	for len(m.queue) > 0 && m.running < m.cfg.MaxRunning && !m.closed {
		r := m.queue[0]
		m.queue = m.queue[1:]
		m.start(r)
	}
	m.queued.Set(float64(len(m.queue)))
	for _, q := range m.queue {
		m.publish(q, m.queuedEvent(q))
	}
}

// finish ends a job with its done event. m.mu is held.
func (m *Manager) finish(j *Job, done lake.Event) {
	j.status, j.done, j.ended, j.run = "done", done, time.Now(), nil
	j.Log.Must("done", done.JSON())
	j.Log.Close()
	m.ended = append(m.ended, j)
	m.retained += j.Log.Size()
	// The oldest finished jobs go early when all of them together keep
	// too much: every one may hold LogLimit bytes for Retention.
	for m.retained > m.cfg.RetainLimit && len(m.ended) > 1 {
		m.forget(m.ended[0])
	}
}

// forget drops a finished job (the first of m.ended). m.mu is held.
func (m *Manager) forget(j *Job) {
	m.ended = m.ended[1:]
	m.retained -= j.Log.Size()
	delete(m.jobs, j.ID)
}

// Get returns the owner's job; anyone else's is ErrNotFound.
func (m *Manager) Get(owner, id string) (*Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok || j.Owner != owner {
		return nil, ErrNotFound
	}
	return j, nil
}

// Status is a job's state for GET /api/jobs/{id}.
type Status struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Status    string     `json:"status"`
	Position  int        `json:"position,omitempty"`
	CreatedAt string     `json:"createdAt"`
	Target    string     `json:"target,omitempty"`
	Strategy  string     `json:"strategy,omitempty"`
	Done      lake.Event `json:"done,omitempty"`
}

// Status reports j.
func (m *Manager) Status(j *Job) Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status(j)
}

// List reports owner's jobs, active and kept for replay, newest first.
func (m *Manager) List(owner string) []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	var mine []*Job
	for _, j := range m.jobs {
		if j.Owner == owner {
			mine = append(mine, j)
		}
	}
	sort.Slice(mine, func(a, b int) bool {
		if !mine[a].Created.Equal(mine[b].Created) {
			return mine[a].Created.After(mine[b].Created)
		}
		return mine[a].ID > mine[b].ID
	})
	out := make([]Status, 0, len(mine))
	for _, j := range mine {
		out = append(out, m.status(j))
	}
	return out
}

// status reports j. m.mu is held.
func (m *Manager) status(j *Job) Status {
	s := Status{ID: j.ID, Kind: j.Kind, Status: j.status, CreatedAt: j.Created.Format(time.RFC3339Nano), Target: j.Target, Strategy: j.Strategy}
	if j.status == "queued" && j.run != nil {
		s.Position = m.position(j.run)
	}
	if j.status == "done" {
		s.Done = j.done
	}
	return s
}

// Cancel detaches the owner's job: it ends with cancelled:true, and its
// run is killed (or leaves the queue) once no job is attached.
func (m *Manager) Cancel(owner, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok || j.Owner != owner {
		return ErrNotFound
	}
	if j.status == "done" {
		j.undelivered = false // a cache hit its owner no longer wants
		return nil
	}
	r := j.run
	for i, x := range r.jobs {
		if x == j {
			r.jobs = append(r.jobs[:i], r.jobs[i+1:]...)
			break
		}
	}
	m.finish(j, lake.Done{Msg: "cancelled", DurationMs: time.Since(j.Created).Milliseconds(), Cancelled: true}.Event())
	m.outcomes.WithLabelValues(j.Kind, "cancelled").Inc()
	if len(r.jobs) == 0 {
		if r.started {
			r.cancel()
		} else {
			for i, q := range m.queue {
				if q == r {
					m.queue = append(m.queue[:i], m.queue[i+1:]...)
					break
				}
			}
			delete(m.runs, r.req.Key)
			m.next()
		}
	}
	return nil
}

// Expire forgets jobs that ended more than Retention ago.
func (m *Manager) Expire(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.ended) > 0 && now.Sub(m.ended[0].ended) > m.cfg.Retention {
		m.forget(m.ended[0])
	}
}

// Run expires old jobs and keeps the result cache within its limit until
// ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.Expire(now)
			if err := m.cache.Prune(m.cfg.CacheLimit); err != nil {
				m.log.Warn("pruning the result cache", "err", err)
			}
		}
	}
}

// Close kills every run and waits for them to end.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for _, r := range m.runs {
		if r.started {
			r.cancel()
		}
	}
	m.mu.Unlock()
	m.wg.Wait()
}
