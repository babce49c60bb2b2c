package jobs

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/evaluate"
	"github.com/quantapix/hqd/internal/httpx"
	"github.com/quantapix/hqd/internal/lake"
	"github.com/quantapix/hqd/internal/sse"
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
}

// Handlers serves the job routes of SPEC §6.1.
type Handlers struct {
	HandlersConfig
	ticketKey []byte
	streams   prometheus.Gauge
	detached  sync.WaitGroup // streams that own their connection (sse.Detach)
}

// Wait waits until every detached stream has ended, or ctx ends. The
// server's Shutdown does not see them: they left net/http when they began.
func (h *Handlers) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { h.detached.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("event streams still open: %w", ctx.Err())
	}
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

// targetRE is a Lean module name: Proving.Basic.
var targetRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_']*(\.[A-Za-z_][A-Za-z0-9_']*)*$`)

type verifyRequest struct {
	Target *string `json:"target"`
	Source *string `json:"source"`
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

// verify is POST /api/verify.
func (h *Handlers) verify(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	var in verifyRequest
	if err := httpx.DecodeJSON(r, httpx.MaxJSONBody, &in); err != nil {
		return err
	}
	if (in.Target == nil) == (in.Source == nil) {
		return httpx.Errorf(http.StatusBadRequest, "invalid_request", "send exactly one of target and source")
	}
	req := Request{Kind: "verify", Owner: id.Sub, Spec: lake.Spec{Dir: h.VerifierDir},
		Verified: func(ok bool, errs int, sorry bool) bool { return ok && errs == 0 && !sorry }}
	if in.Target != nil {
		t := *in.Target
		if !targetRE.MatchString(t) || len(t) > 512 {
			return httpx.Errorf(http.StatusUnprocessableEntity, "unknown_target", "%q is not a module name like Proving.Basic", t)
		}
		if st, err := os.Stat(filepath.Join(h.VerifierDir, filepath.FromSlash(strings.ReplaceAll(t, ".", "/"))+".lean")); err != nil || !st.Mode().IsRegular() {
			return httpx.Errorf(http.StatusUnprocessableEntity, "unknown_target", "the verifier project has no module %s", t)
		}
		req.Spec.Args, req.Mode, req.Target = []string{"build", t}, lake.ModeBuild, t
		if err := h.ready(); err != nil {
			return err
		}
		req.Key = h.key(h.VerifierDir, "verify-target", req.Spec.Args, []byte(t))
	} else {
		src := *in.Source
		if int64(len(src)) > h.MaxSource {
			return httpx.Errorf(http.StatusRequestEntityTooLarge, "source_too_large", "the source is %d bytes; at most %d are checked", len(src), h.MaxSource)
		}
		if strings.IndexByte(src, 0) >= 0 {
			return httpx.Errorf(http.StatusBadRequest, "invalid_request", "the source contains a NUL byte")
		}
		if err := h.ready(); err != nil {
			return err
		}
		req.Spec.Args, req.Mode, req.Spec.Source = []string{"env", "lean", "{source}"}, lake.ModeLean, []byte(src)
		req.Key = h.key(h.VerifierDir, "verify-source", req.Spec.Args, []byte(src))
	}
	return h.submit(w, r, req)
}

// key is the cache key of an input against a project's current state.
func (h *Handlers) key(dir, kind string, args []string, input []byte) string {
	tree, err := lake.TreeState(dir)
	if err != nil {
		tree = "unreadable:" + time.Now().String() // never a hit
	}
	return lake.Key(kind, tree, lake.Toolchain(dir), h.LakeBin, args, input)
}

// evaluated is the 202 answer of POST /api/evaluate: the job and the
// strategy's figures (SPEC §7).
type evaluated struct {
	submitted
	evaluate.Analysis
}

// evaluate is POST /api/evaluate: the allow-list decides before any
// process starts; an accepted portfolio runs the kernel with its
// normalized JSON on stdin.
func (h *Handlers) evaluate(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	body, err := io.ReadAll(io.LimitReader(r.Body, httpx.MaxJSONBody+1))
	if err != nil {
		return httpx.Errorf(http.StatusBadRequest, "invalid_request", "could not read the request body")
	}
	if len(body) > httpx.MaxJSONBody {
		return httpx.TooLarge(httpx.MaxJSONBody)
	}
	if !utf8.Valid(body) {
		return httpx.Errorf(http.StatusBadRequest, "invalid_request", "the request body is not valid UTF-8")
	}
	p, err := evaluate.ParseRequest(body)
	var n *evaluate.Normalized
	var a *evaluate.Analysis
	if err == nil {
		n, a, err = evaluate.Evaluate(p, time.Now())
	}
	var me *evaluate.MalformedError
	var re *evaluate.RefusedError
	switch {
	case errors.As(err, &me):
		return httpx.Errorf(http.StatusBadRequest, "invalid_request", "%s", me.Msg)
	case errors.As(err, &re):
		e := httpx.Errorf(http.StatusUnprocessableEntity, "strategy_not_allowed", "%s", re.Msg)
		if re.Leg > 0 {
			e.Detail = map[string]any{"leg": re.Leg} // SPEC §7: the leg the refusal is about
		}
		return e
	case err != nil:
		return err
	}
	if err := ready(h.EvaluatorAvailable); err != nil {
		return err
	}
	stdin, _ := json.Marshal(n) // plain values always marshal
	req := Request{Kind: "evaluate", Owner: id.Sub, Mode: lake.ModeExe, Strategy: a.Strategy,
		Spec: lake.Spec{Dir: h.EvaluatorDir, Args: []string{"exe", h.EvaluatorExe}, Stdin: stdin},
		Key:  h.key(h.EvaluatorDir, "evaluate", []string{"exe", h.EvaluatorExe}, stdin)}
	job, err := h.Manager.Submit(req)
	if err != nil {
		return submitError(err)
	}
	return httpx.WriteJSON(w, http.StatusAccepted, evaluated{
		submitted: submitted{ID: job.ID, Status: "queued", Events: "/api/jobs/" + job.ID + "/events", Ticket: h.newTicket(job, time.Now())},
		Analysis:  *a,
	})
}

func (h *Handlers) submit(w http.ResponseWriter, r *http.Request, req Request) error {
	job, err := h.Manager.Submit(req)
	if err != nil {
		return submitError(err)
	}
	return httpx.WriteJSON(w, http.StatusAccepted, submitted{ID: job.ID, Status: "queued", Events: "/api/jobs/" + job.ID + "/events", Ticket: h.newTicket(job, time.Now())})
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

func (h *Handlers) ticket(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	job, err := h.Manager.Get(id.Sub, chi.URLParam(r, "id"))
	if err != nil {
		return notFound()
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"ticket": h.newTicket(job, time.Now())})
}

// TicketTTL is how long a stream ticket works (SPEC §6.1).
const TicketTTL = 60 * time.Second

// newTicket signs "job id, owner, expiry": a ticket opens that job's
// stream for that user only, reusably until it expires.
func (h *Handlers) newTicket(j *Job, now time.Time) string {
	payload := j.ID + "|" + j.Owner + "|" + strconv.FormatInt(now.Add(TicketTTL).Unix(), 10)
	mac := hmac.New(sha256.New, h.ticketKey)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// checkTicket returns the owner a ticket names for job id.
func (h *Handlers) checkTicket(t, jobID string, now time.Time) (owner string, ok bool) {
	p64, s64, found := strings.Cut(t, ".")
	if !found {
		return "", false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sig, err2 := base64.RawURLEncoding.DecodeString(s64)
	if err1 != nil || err2 != nil {
		return "", false
	}
	mac := hmac.New(sha256.New, h.ticketKey)
	mac.Write(payload)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return "", false
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 || parts[0] != jobID {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || now.Unix() > exp {
		return "", false
	}
	return parts[1], true
}

// events is GET /api/jobs/{id}/events.
func (h *Handlers) events(w http.ResponseWriter, r *http.Request) error {
	jobID := chi.URLParam(r, "id")
	var owner string
	if t := r.URL.Query().Get("ticket"); t != "" {
		o, ok := h.checkTicket(t, jobID, time.Now())
		if !ok {
			return &httpx.Error{Status: http.StatusUnauthorized, Code: "invalid_ticket", Msg: "the ticket is expired, forged or for another job; ask POST /api/jobs/{id}/ticket for a fresh one"}
		}
		owner = o
	} else {
		tok, present := auth.BearerToken(r)
		if !present || tok == "" {
			return &httpx.Error{Status: http.StatusUnauthorized, Code: "unauthorized", Msg: "send ?ticket= or an Authorization: Bearer token",
				Header: http.Header{"Www-Authenticate": {"Bearer"}}}
		}
		id, err := h.Verifier.Verify(r.Context(), tok)
		if err != nil {
			return &httpx.Error{Status: http.StatusUnauthorized, Code: "unauthorized", Msg: "a valid bearer token is required", Err: err,
				Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}}
		}
		owner = id.Sub
	}
	httpx.SetUserTag(r.Context(), auth.UserTag(owner))
	job, err := h.Manager.Get(owner, jobID)
	if err != nil {
		return notFound()
	}
	last, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	// Over HTTP/1.1 the stream takes its connection over and runs on its
	// own goroutine: ten thousand open streams then cost little more than
	// their sockets (issue 9, P4). Over HTTP/2 it stays in this handler.
	sw, err := sse.Detach(w, r, 3*time.Second, 10*time.Second)
	if err != nil {
		return nil // the client is gone
	}
	h.streams.Inc()
	stream := func(ctx context.Context) {
		defer h.streams.Dec()
		err := sse.Stream(ctx, sw, job.Log, last, h.Heartbeat, h.Shutdown)
		_ = sw.Close() // a detached stream's connection ends with it
		if err == nil {
			h.Manager.Delivered(job) // sent to its end
		}
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, sse.ErrShutdown) && !errors.Is(err, sse.ErrGone) {
			httpx.LoggerFrom(ctx).Info("event stream ended", "err", err)
		}
	}
	if !sw.Detached() {
		stream(r.Context())
		return nil
	}
	h.detached.Add(1)
	go func() {
		defer h.detached.Done()
		// The request's context ends when this handler returns; the stream
		// ends with the job, its client or the server's shutdown.
		stream(context.WithoutCancel(r.Context()))
	}()
	return nil
}
