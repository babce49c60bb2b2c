package httpx_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quantapix/hqd/internal/httpx"
)

func TestObserve(t *testing.T) {
	var logs bytes.Buffer
	r := chi.NewRouter()
	r.Use(httpx.Observe(slog.New(slog.NewJSONHandler(&logs, nil)), httpx.NewMetrics(prometheus.NewRegistry())))
	r.Get("/boom/{id}", func(w http.ResponseWriter, r *http.Request) {
		httpx.SetUserTag(r.Context(), "tag123")
		panic("something broke at 10.0.0.7")
	})
	r.Method("GET", "/refused", httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return &httpx.Error{Status: 409, Code: "conflict_x", Msg: "shown", Err: errSecret}
	}))
	r.Method("GET", "/failed", httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return errSecret
	}))

	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{{"/boom/secret-file.md", 500, "internal"}, {"/refused", 409, "conflict_x"}, {"/failed", 500, "internal"}} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		var e struct {
			Error struct{ Code, Message, RequestID string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != tc.status || e.Error.Code != tc.code || e.Error.RequestID != rec.Header().Get("X-Request-Id") {
			t.Errorf("GET %s = %d %s", tc.path, rec.Code, rec.Body)
		}
		if strings.Contains(rec.Body.String(), "10.0.0.7") || strings.Contains(rec.Body.String(), "goroutine") || strings.Contains(rec.Body.String(), "db password") {
			t.Errorf("GET %s leaks internals: %s", tc.path, rec.Body)
		}
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["status"] == float64(500) {
			line = m
			break
		}
	}
	if line == nil || line["route"] != "/boom/{id}" || line["user"] != "tag123" || line["requestId"] == "" || line["durationMs"] == nil || line["bytes"] == nil {
		t.Errorf("access log line = %v\n%s", line, logs.String())
	}
	if strings.Contains(logs.String(), "secret-file.md") {
		t.Error("the access log names the file path; it must log the route pattern")
	}
}

type secretErr struct{}

func (secretErr) Error() string { return "db password is hunter2" }

var errSecret = secretErr{}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		A string `json:"a"`
	}
	for _, tc := range []struct {
		in     string
		status int
	}{
		{`{"a":"x"}`, 0}, {`{"a":1}`, 400}, {`{"b":"x"}`, 400}, {`{"a":"x"} x`, 400}, {"{\"a\":\"\xff\"}", 400}, {``, 400}, {`[`, 400},
		{`{"a":"` + strings.Repeat("x", 100) + `"}`, 413},
	} {
		req := httptest.NewRequest("POST", "/", strings.NewReader(tc.in))
		var b body
		err := httpx.DecodeJSON(req, 64, &b)
		var he *httpx.Error
		switch {
		case tc.status == 0 && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.status != 0 && (err == nil || !asError(err, &he) || he.Status != tc.status):
			t.Errorf("%q: %v, want %d", tc.in, err, tc.status)
		}
	}
}

func asError(err error, target **httpx.Error) bool {
	e, ok := err.(*httpx.Error)
	*target = e
	return ok
}
