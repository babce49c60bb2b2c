package jobs

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/evaluate"
	"github.com/quantapix/hqd/internal/httpx"
	"github.com/quantapix/hqd/internal/lake"
)

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
	if errors.Is(err, httpx.ErrBodyIdle) {
		return err // 408, as every route answers a stalled body (SPEC §3)
	}
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
		submitted: submitted{ID: job.ID, Status: "queued", Events: "/api/jobs/" + job.ID + "/events", Ticket: h.newTicket(job, id, time.Now())},
		Analysis:  *a,
	})
}
