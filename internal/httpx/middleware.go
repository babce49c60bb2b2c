package httpx

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
)

type requestIDKey struct{}

// reqInfo is what Observe keeps per request; one allocation serves the
// request id, the user tag and the logger, which is made only if needed.
type reqInfo struct {
	id      string
	userTag string
	base    *slog.Logger
	logger  *slog.Logger
	backend atomic.Int64 // nanoseconds spent waiting on backends (the store)
}

// AddBackendTime records time the request spent waiting on a backend, so
// that hqd's own share of the request can be measured (issue 9, P2).
func AddBackendTime(ctx context.Context, d time.Duration) {
	if ri, ok := ctx.Value(requestIDKey{}).(*reqInfo); ok {
		ri.backend.Add(int64(d))
	}
}

func (ri *reqInfo) log() *slog.Logger {
	if ri.logger == nil {
		ri.logger = ri.base.With("requestId", ri.id)
	}
	return ri.logger
}

// RequestID returns the request id of ctx, or "".
func RequestID(ctx context.Context) string {
	if ri, ok := ctx.Value(requestIDKey{}).(*reqInfo); ok {
		return ri.id
	}
	return ""
}

// LoggerFrom returns the request's logger (with its request id), or the default.
func LoggerFrom(ctx context.Context) *slog.Logger {
	if ri, ok := ctx.Value(requestIDKey{}).(*reqInfo); ok {
		return ri.log()
	}
	return slog.Default()
}

// SetUserTag records the non-reversible user tag the access log prints.
// Auth middleware calls it once it knows who is asking.
func SetUserTag(ctx context.Context, tag string) {
	if ri, ok := ctx.Value(requestIDKey{}).(*reqInfo); ok {
		ri.userTag = tag
	}
}

// validRequestID says whether a client's X-Request-Id may be reused:
// 1–128 characters of [A-Za-z0-9._-] (SPEC §3).
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Request ids are a random per-process prefix and a counter: unique, not
// guessable across restarts, and free of a syscall per request.
var (
	idPrefix  = func() string { var b [5]byte; _, _ = rand.Read(b[:]); return idEncoding.EncodeToString(b[:]) }()
	idCounter atomic.Uint64
)

func newRequestID() string {
	return idPrefix + strconv.FormatUint(idCounter.Add(1), 36)
}

// Metrics are the HTTP metrics of SPEC §9.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	own      *prometheus.HistogramVec
}

// NewMetrics registers the HTTP metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hqd_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hqd_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
	}
	m.own = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hqd_http_own_duration_seconds", Help: "HTTP request latency minus the time spent waiting on the store, by route pattern and method.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .002, .005, .01, .025, .1},
	}, []string{"route", "method"})
	reg.MustRegister(m.requests, m.duration, m.own)
	return m
}

// responseWriter records what the access log needs. It keeps
// http.ResponseController working through Unwrap.
type responseWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status = code
		// 1xx answers are informational; the real status comes later.
		w.wroteHeader = code >= 200
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ReadFrom keeps net/http's fast path (sendfile for files, no 32 KiB copy
// buffer per response) when a handler io.Copy's a body.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Observe is the outermost middleware: it assigns the request id, recovers
// panics into a JSON 500, and writes one access-log line and the metrics for
// every request. The route label is chi's pattern, never the raw path, so
// file names do not reach logs or label sets.
func Observe(log *slog.Logger, m *Metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			id := r.Header.Get("X-Request-Id")
			if !validRequestID(id) {
				id = newRequestID()
			}
			w.Header().Set("X-Request-Id", id)
			ri := &reqInfo{id: id, base: log}
			r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, ri))
			rw := &responseWriter{ResponseWriter: w, status: http.StatusOK}

			defer func() {
				p := recover()
				if p != nil {
					if p == http.ErrAbortHandler {
						rw.status = 499 // client saw a truncated answer
					} else {
						ri.log().Error("panic", "panic", p, "stack", string(debug.Stack()))
						if !rw.wroteHeader {
							WriteError(rw, r, &Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error"})
						}
					}
				}
				route := chi.RouteContext(r.Context()).RoutePattern()
				if route == "" {
					route = "unmatched"
				}
				d := time.Since(start)
				if m != nil {
					m.requests.WithLabelValues(route, r.Method, strconv.Itoa(rw.status)).Inc()
					m.duration.WithLabelValues(route, r.Method).Observe(d.Seconds())
					if b := time.Duration(ri.backend.Load()); b > 0 {
						m.own.WithLabelValues(route, r.Method).Observe((d - b).Seconds())
					}
				}
				if log.Enabled(r.Context(), slog.LevelInfo) {
					attrs := []slog.Attr{
						slog.String("requestId", id), slog.String("method", r.Method), slog.String("route", route), slog.Int("status", rw.status),
						slog.Int64("bytes", rw.bytes), slog.Float64("durationMs", float64(d.Microseconds())/1000),
					}
					if ri.userTag != "" {
						attrs = append(attrs, slog.String("user", ri.userTag))
					}
					log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
				}
				if p == http.ErrAbortHandler {
					panic(p) // let net/http drop the connection
				}
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

// SecurityHeaders sets the headers of SPEC §3 on every answer. hsts adds
// Strict-Transport-Security, for listeners that serve HTTPS.
func SecurityHeaders(csp string, hsts bool) func(http.Handler) http.Handler {
	// The values are made once and shared by every response (net/http only
	// reads them; Set replaces, Add copies a full slice): five allocations
	// fewer per request.
	nosniff, referrer, policy, deny := []string{"nosniff"}, []string{"strict-origin-when-cross-origin"}, []string{csp}, []string{"DENY"}
	sts := []string{"max-age=63072000; includeSubDomains"}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["X-Content-Type-Options"] = nosniff
			h["Referrer-Policy"] = referrer
			h["Content-Security-Policy"] = policy
			h["X-Frame-Options"] = deny
			if hsts || r.TLS != nil {
				h["Strict-Transport-Security"] = sts
			}
			next.ServeHTTP(w, r)
		})
	}
}

// LimitBody caps every request body at limit bytes; handlers that stream
// raw uploads install their own larger limit.
func LimitBody(limit int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit && !isRawUpload(r) {
				WriteError(w, r, TooLarge(limit))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// isRawUpload says whether the request streams a file body (?raw=1 on PUT),
// which is bounded by HQD_MAX_UPLOAD instead of the JSON limit.
func isRawUpload(r *http.Request) bool {
	return r.Method == http.MethodPut && IsRaw(r)
}

// IsRaw says whether the request asks for raw mode (?raw=1 or ?raw=true).
func IsRaw(r *http.Request) bool {
	v := r.URL.Query().Get("raw")
	return v == "1" || v == "true"
}
