package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/httpx"
	"github.com/quantapix/hqd/internal/sse"
)

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
