// Package httpx holds the few HTTP helpers every feature package shares: the
// error type handlers return, the adapter that turns it into one JSON answer,
// strict JSON decoding, and the middleware chain of SPEC §3 (request ids,
// access log and metrics, panic recovery, security headers, CORS, body limits).
// It knows nothing about files, tokens or jobs.
package httpx

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Error is an error with a status and a message that is safe to show the
// client. Msg goes to the client; Err only to the log.
type Error struct {
	Status     int    // 0 means 500
	Code       string // stable snake_case word, e.g. "invalid_path"
	Msg        string // shown to the client
	Err        error  // logged, never shown
	RetryAfter int    // seconds; sets Retry-After when > 0
	Header     http.Header
	// Detail adds fields to the error object for the client, beside code
	// and message (e.g. the evaluator's "leg").
	Detail map[string]any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return e.Code + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted client message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"requestId,omitempty"`
}

// WriteError answers err as the JSON error of SPEC §3. Anything that is not
// an *Error is a 500 whose details go to the log only.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var he *Error
	switch {
	case errors.Is(err, ErrBodyIdle):
		he = &Error{Status: http.StatusRequestTimeout, Code: "request_timeout", Msg: "the request body stopped arriving; nothing was changed", Err: err}
	case !errors.As(err, &he):
		he = &Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error", Err: err}
	}
	status := he.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		LoggerFrom(r.Context()).Error("request failed", "status", status, "code", he.Code, "err", err)
	} else if he.Err != nil {
		LoggerFrom(r.Context()).Debug("request refused", "status", status, "code", he.Code, "err", he.Err)
	}
	h := w.Header()
	for k, v := range he.Header {
		h[k] = v
	}
	if he.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(he.RetryAfter))
	}
	// A failed request must not look like the object it was about.
	h.Del("ETag")
	h.Del("Last-Modified")
	h.Del("Content-Length")
	h.Del("Content-Range")
	if len(he.Detail) > 0 {
		body := map[string]any{}
		for k, v := range he.Detail {
			body[k] = v
		}
		body["code"], body["message"] = he.Code, he.Msg
		if id := RequestID(r.Context()); id != "" {
			body["requestId"] = id
		}
		writeJSON(w, status, map[string]any{"error": body})
		return
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: he.Code, Message: he.Msg, RequestID: RequestID(r.Context())}})
}

// HandlerFunc is a handler that returns its error instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP is the one place that writes a handler's error.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		if rw, ok := w.(*responseWriter); ok && rw.wroteHeader {
			// Too late for an error body: the status is out. Log and let the
			// connection show the truncation.
			LoggerFrom(r.Context()).Error("request failed after response started", "err", err)
			panic(http.ErrAbortHandler)
		}
		WriteError(w, r, err)
	}
}

// NotFound answers every unknown route with the JSON error shape.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, &Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such route"})
}

// MethodNotAllowed answers a known route asked with the wrong method.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Msg: r.Method + " is not allowed here"})
}
