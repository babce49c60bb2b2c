package jobs

import (
	"crypto/rand"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/httpx"
)

// Availability says whether jobs can run now, and why not.
type Availability func() (ok bool, why string)

// HandlersConfig is what the job routes are built from.
type HandlersConfig struct {
	Manager            *Manager
	Verifier           auth.TokenVerifier // for event streams opened with a bearer token
	VerifierDir        string             // HQD_VERIFIER_DIR
	EvaluatorDir       string             // HQD_EVALUATOR_DIR
	EvaluatorExe       string             // HQD_EVALUATOR_EXE
	LakeBin            string
	MaxSource          int64
	Available          Availability // the verifier
	EvaluatorAvailable Availability
	Heartbeat          time.Duration
	Shutdown           <-chan struct{} // closed when the server shuts down
	// Revoked refuses the tickets of a sign-in that was logged out
	// (auth.Revocations.Revoked).
	Revoked func(*auth.Identity) bool
}

// Handlers serves the job routes of SPEC §6.1.
type Handlers struct {
	HandlersConfig
	ticketKey []byte
	streams   prometheus.Gauge
	detached  sync.WaitGroup // streams that own their connection (sse.Detach)
}

// NewHandlers is cfg, ready to serve: a fresh ticket key (tickets die with
// the process, as their jobs do) and the stream metric registered on reg
// (when not nil).
func NewHandlers(cfg HandlersConfig, reg prometheus.Registerer) *Handlers {
	h := &Handlers{
		HandlersConfig: cfg,
		ticketKey:      make([]byte, 32),
		streams:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "hqd_sse_streams_open", Help: "Open job event streams."}),
	}
	_, _ = rand.Read(h.ticketKey) // crypto/rand.Read never fails on Linux
	if reg != nil {
		reg.MustRegister(h.streams)
	}
	if h.Heartbeat == 0 {
		h.Heartbeat = 15 * time.Second
	}
	return h
}

// Routes mounts the routes that need a token.
func (h *Handlers) Routes(r chi.Router) {
	r.Method(http.MethodPost, "/api/verify", httpx.HandlerFunc(h.verify))
	r.Method(http.MethodPost, "/api/evaluate", httpx.HandlerFunc(h.evaluate))
	r.Method(http.MethodGet, "/api/jobs", httpx.HandlerFunc(h.list))
	r.Method(http.MethodGet, "/api/jobs/{id}", httpx.HandlerFunc(h.status))
	r.Method(http.MethodDelete, "/api/jobs/{id}", httpx.HandlerFunc(h.cancel))
	r.Method(http.MethodPost, "/api/jobs/{id}/ticket", httpx.HandlerFunc(h.ticket))
}

// StreamRoutes mounts the event stream, which authenticates itself: with a
// ticket (EventSource cannot send headers) or a bearer token.
func (h *Handlers) StreamRoutes(r chi.Router) {
	r.Method(http.MethodGet, "/api/jobs/{id}/events", httpx.HandlerFunc(h.events))
}

type submitted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Events string `json:"events"`
	Ticket string `json:"ticket"`
}

// ready refuses before any process starts when jobs cannot run.
func (h *Handlers) ready() error { return ready(h.Available) }

func ready(available Availability) error {
	if ok, why := available(); !ok {
		// The reason names hosts' paths and settings: it goes to the log
		// (and /readyz on the metrics listener), not to the user.
		return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "jobs_unavailable",
			Msg: "this server cannot run jobs right now; its operator finds the reason in its log", Err: errors.New(why), RetryAfter: 30}
	}
	return nil
}

func (h *Handlers) submit(w http.ResponseWriter, r *http.Request, req Request) error {
	job, err := h.Manager.Submit(req)
	if err != nil {
		return submitError(err)
	}
	id := auth.MustFromContext(r.Context())
	return httpx.WriteJSON(w, http.StatusAccepted, submitted{ID: job.ID, Status: "queued", Events: "/api/jobs/" + job.ID + "/events", Ticket: h.newTicket(job, id, time.Now())})
}

// submitError answers a job the manager would not take.
func submitError(err error) error {
	switch {
	case errors.Is(err, ErrQueueFull):
		return &httpx.Error{Status: http.StatusTooManyRequests, Code: "queue_full", Msg: "the job queue is full; try again shortly", RetryAfter: 10}
	case errors.Is(err, ErrTooManyJobs):
		return &httpx.Error{Status: http.StatusTooManyRequests, Code: "too_many_jobs", Msg: "you have the most active jobs allowed; wait for one to finish or cancel one", RetryAfter: 10}
	}
	return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "jobs_unavailable", Msg: "jobs are not accepted right now", Err: err, RetryAfter: 5}
}

func notFound() error {
	return &httpx.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such job"}
}

// list is GET /api/jobs: the caller's jobs, newest first, active and kept
// for replay, so a client that reloaded can find, resume or cancel them.
func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	return httpx.WriteJSON(w, http.StatusOK, map[string][]Status{"jobs": h.Manager.List(id.Sub)})
}

func (h *Handlers) status(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	job, err := h.Manager.Get(id.Sub, chi.URLParam(r, "id"))
	if err != nil {
		return notFound()
	}
	return httpx.WriteJSON(w, http.StatusOK, h.Manager.Status(job))
}

func (h *Handlers) cancel(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	if err := h.Manager.Cancel(id.Sub, chi.URLParam(r, "id")); err != nil {
		return notFound()
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
