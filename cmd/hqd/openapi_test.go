package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quantapix/hqd/internal/auth/devidp"
	"github.com/quantapix/hqd/internal/httpx"
	"github.com/quantapix/hqd/internal/jobs"
	"github.com/quantapix/hqd/internal/openapi"
)

// notAPI are the routes of hqd's router that the OpenAPI document leaves
// out on purpose, and why. (The PWA is not a route: it is the router's
// NotFound handler, serving every other GET.)
var notAPI = map[string]string{
	"POST /dev/cognito/":                            "hqd dev's identity provider: Cognito's own JSON protocol, never in hqd serve",
	"GET /dev/cognito/{pool}/.well-known/jwks.json": "hqd dev's identity provider's key set: never in hqd serve",
}

// TestOpenAPI checks the document: it is a valid OpenAPI 3.1 document,
// it documents every route of the router (and no route the router does
// not have), and hqd serves it, without a token, byte for byte. That the
// answers hqd gives match it is checked by do(), in every test.
func TestOpenAPI(t *testing.T) {
	spec, err := loadAPI()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("every route is documented", func(t *testing.T) {
		inRouter := map[string]bool{}
		err := chi.Walk(routeTable(t), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
			inRouter[method+" "+docTemplate(route)] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		inDoc := map[string]bool{}
		for path, item := range spec.doc.Paths.Map() {
			for method := range item.Operations() {
				inDoc[method+" "+path] = true
			}
		}
		for r := range inRouter {
			if !inDoc[r] && notAPI[r] == "" {
				t.Errorf("%s is a route of hqd but not in the OpenAPI document (document it, or list it in notAPI with the reason)", r)
			}
			if inDoc[r] && notAPI[r] != "" {
				t.Errorf("%s is documented but listed in notAPI", r)
			}
		}
		for r := range inDoc {
			if !inRouter[r] {
				t.Errorf("the OpenAPI document has %s, which hqd's router does not", r)
			}
		}
		for r := range notAPI {
			if !inRouter[r] {
				t.Errorf("notAPI lists %s, which hqd's router does not have", r)
			}
		}
	})

	t.Run("served without a token", func(t *testing.T) {
		h := startHQD(t, nil, "dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+t.TempDir())
		a := do(t, "GET", h.URL+"/api/openapi.json", "", nil)
		if a.status != 200 || a.header.Get("Content-Type") != "application/json" || !bytes.Equal(a.body, openapi.Document()) {
			t.Fatalf("GET /api/openapi.json = %d %q, %d bytes; want 200 application/json, the %d bytes of internal/openapi/openapi.json",
				a.status, a.header.Get("Content-Type"), len(a.body), len(openapi.Document()))
		}
		etag := a.header.Get("ETag")
		if b := do(t, "GET", h.URL+"/api/openapi.json", "", nil, "If-None-Match", etag); etag == "" || b.status != 304 || len(b.body) != 0 {
			t.Errorf("GET with If-None-Match: %s = %d, %d bytes; want 304", etag, b.status, len(b.body))
		}
	})
}

// TestCheckAnswer checks the checker: it refuses answers that break the
// document and accepts those that keep it, from many goroutines at once.
func TestCheckAnswer(t *testing.T) {
	const base = "http://openapi.invalid" // never dialled: the answers are made up here
	publicURLs.Store(base, true)
	t.Cleanup(func() { publicURLs.Delete(base) })
	hdr := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"r1"}}
	unauthorized := hdr.Clone()
	unauthorized.Set("WWW-Authenticate", "Bearer")
	cases := []struct {
		name         string
		method, path string
		status       int
		header       http.Header
		body         string
		ok           bool
	}{
		{"healthz", "GET", "/healthz", 200, hdr, `{"status":"alive"}`, true},
		{"a field too many", "GET", "/healthz", 200, hdr, `{"status":"alive","x":1}`, false},
		{"a status not listed", "GET", "/healthz", 418, hdr, `{}`, false},
		{"no request id", "GET", "/healthz", 200, http.Header{"Content-Type": {"application/json"}}, `{"status":"alive"}`, false},
		{"401 with its challenge", "GET", "/api/files", 401, unauthorized, `{"error":{"code":"unauthorized","message":"m","requestId":"r1"}}`, true},
		{"401 without", "GET", "/api/files", 401, hdr, `{"error":{"code":"unauthorized","message":"m","requestId":"r1"}}`, false},
		{"an error code not listed", "GET", "/api/files", 401, unauthorized, `{"error":{"code":"nope","message":"m","requestId":"r1"}}`, false},
		{"a listing", "GET", "/api/files", 200, hdr, `{"files":[{"path":"a","size":1,"etag":"\"e\"","lastModified":"2026-12-01T10:00:00Z"}]}`, true},
		{"a date that is not RFC 3339", "GET", "/api/files", 200, hdr, `{"files":[{"path":"a","size":1,"etag":"\"e\"","lastModified":"yesterday"}]}`, false},
		{"a file path of several segments", "DELETE", "/api/files/a/b/c.md", 204, http.Header{"X-Request-Id": {"r1"}}, ``, true},
		{"a raw read of a JSON file", "GET", "/api/files/a.json?raw=1", 200, hdr, `[1,2]`, true},
		{"an envelope that is not one", "GET", "/api/files/a.json", 200, hdr, `[1,2]`, false},
		{"405 for a method not documented", "PATCH", "/api/files/x", 405, hdr, `{"error":{"code":"method_not_allowed","message":"m","requestId":"r1"}}`, true},
		{"200 for a method not documented", "PATCH", "/api/files/x", 200, hdr, `{}`, false},
		{"a route not documented", "GET", "/dev/cognito/pool/.well-known/jwks.json", 200, hdr, `{}`, true},
	}
	var wg sync.WaitGroup
	for range 4 {
		for _, tc := range cases {
			wg.Go(func() {
				req, _ := http.NewRequest(tc.method, base+tc.path, nil)
				rec := &recorder{TB: t}
				checkAnswer(rec, req, call{tc.status, tc.header, []byte(tc.body)})
				if got := len(rec.errors()) == 0; got != tc.ok {
					t.Errorf("%s: checkAnswer passed it: %v, want %v %v", tc.name, got, tc.ok, rec.errors())
				}
			})
		}
	}
	wg.Wait()
}

// recorder is a testing.TB that keeps the errors reported to it.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs
}

// routeTable is the router hqd serves, built in this process from the
// parts routes() touches: the handlers are never called, so none of them
// needs its store, verifier or job manager (newApp would also bind
// listeners and try a sandboxed trial run). The dev identity provider is
// in, so its routes are walked too.
func routeTable(t *testing.T) chi.Routes {
	t.Helper()
	cfg, err := parseConfig("dev", []string{"--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir=" + t.TempDir()},
		func(string) string { return "" }, nil, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	idp, err := devidp.New(devidp.Config{Dir: t.TempDir(), BaseURL: "http://127.0.0.1", PoolID: cfg.PoolID, ClientID: cfg.ClientIDs[0]}, log)
	if err != nil {
		t.Fatal(err)
	}
	a := &App{cfg: cfg, log: log, reg: prometheus.NewRegistry(), devIDP: idp, jobRoutes: jobs.NewHandlers(jobs.HandlersConfig{}, nil)}
	r, ok := a.routes().(chi.Routes)
	if !ok {
		t.Fatalf("routes() is a %T, not a chi router", a.routes())
	}
	return r
}

// chiParam is a chi path parameter, with or without its regexp.
var chiParam = regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)

// docTemplate writes a chi route pattern as the document's path template:
// {id:[0-9]+} is {id}, and the files route's trailing wildcard is {path},
// which spans segments (OpenAPI templates cannot hold a slash).
func docTemplate(route string) string {
	route = chiParam.ReplaceAllString(route, "{$1}")
	if p, ok := strings.CutSuffix(route, "/*"); ok {
		return p + "/{path}"
	}
	return route
}

// api is the loaded document and its paths as patterns.
type api struct {
	doc   *openapi3.T
	paths []apiPath
}

type apiPath struct {
	template string
	re       *regexp.Regexp
	item     *openapi3.PathItem
}

// The document is loaded and validated once per test process; the result
// is only read afterwards, so every test may use it at once.
var loadAPI = sync.OnceValues(func() (*api, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Document())
	if err != nil {
		return nil, fmt.Errorf("loading internal/openapi/openapi.json: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("internal/openapi/openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	// Validate applies the 3.1 rules (JSON Schema 2020-12) itself for a
	// 3.1 document (the first option only says so out loud); the second
	// refuses a format it does not know, which would check nothing.
	if err := doc.Validate(context.Background(), openapi3.IsOpenAPI31OrLater(), openapi3.EnableSchemaFormatValidation()); err != nil {
		return nil, fmt.Errorf("internal/openapi/openapi.json is not a valid OpenAPI 3.1 document: %w", err)
	}
	a := &api{doc: doc}
	for template, item := range doc.Paths.Map() {
		a.paths = append(a.paths, apiPath{template: template, re: templateRE(template), item: item})
	}
	// The most specific template first (the most literal characters), as
	// OpenAPI's own matching rule has it; in hqd's document no two overlap.
	sort.Slice(a.paths, func(i, j int) bool {
		li, lj := len(chiParam.ReplaceAllString(a.paths[i].template, "")), len(chiParam.ReplaceAllString(a.paths[j].template, ""))
		if li != lj {
			return li > lj
		}
		return a.paths[i].template < a.paths[j].template
	})
	return a, nil
})

// templateRE matches the escaped request paths of a template: {path}
// spans segments (the files route), every other parameter is one segment.
func templateRE(template string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	rest := template
	for {
		loc := chiParam.FindStringIndex(rest)
		if loc == nil {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		b.WriteString(regexp.QuoteMeta(rest[:loc[0]]))
		if rest[loc[0]:loc[1]] == "{path}" {
			b.WriteString("(.+)")
		} else {
			b.WriteString("([^/]+)")
		}
		rest = rest[loc[1]:]
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// find returns the template and item whose template matches the path.
func (a *api) find(u *url.URL) (string, *openapi3.PathItem) {
	p := u.EscapedPath()
	for _, ap := range a.paths {
		if ap.re.MatchString(p) {
			return ap.template, ap.item
		}
	}
	return "", nil
}

// publicURLs are the base URLs of the public listeners of the hqd
// processes tests have started: only their answers are checked against
// the document (not MinIO's, cognito-local's or the metrics listener's).
var publicURLs sync.Map

// checkAnswer fails t when hqd's answer to req does not match the OpenAPI
// document: a status the operation does not list, a content type, a body
// or a documented header that is not as described. Answers of routes the
// document leaves out (the PWA, /dev/, unknown routes), CORS preflights
// and HEAD requests (no body; hqd routes none) are not checked.
func checkAnswer(t testing.TB, req *http.Request, c call) {
	t.Helper()
	if _, ok := publicURLs.Load(req.URL.Scheme + "://" + req.URL.Host); !ok || req.Method == http.MethodOptions || req.Method == http.MethodHead {
		return
	}
	a, err := loadAPI()
	if err != nil {
		t.Errorf("checking %s %s against the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return
	}
	template, item := a.find(req.URL)
	if item == nil {
		return
	}
	op := item.GetOperation(req.Method)
	if op == nil {
		// A documented path asked with another method: chi answers 405.
		if err := a.schemaCheck("Error", c.body); c.status != http.StatusMethodNotAllowed || err != nil {
			t.Errorf("%s %s answered %d %s; the OpenAPI document has no %s for %s, so want 405 and an error body (%v)",
				req.Method, req.URL.Path, c.status, clip(c.body), req.Method, template, err)
		}
		return
	}
	raw := req.Method == http.MethodGet && httpx.IsRaw(req) && (c.status == http.StatusOK || c.status == http.StatusPartialContent)
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true, // a status the operation does not list is a mismatch
		ExcludeResponseBody:   raw,  // a raw read answers the file's own bytes, which no schema describes
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req,
			Route:   &routers.Route{Spec: a.doc, Path: template, PathItem: item, Method: req.Method, Operation: op},
			Options: opts,
		},
		Status:  c.status,
		Header:  c.header,
		Options: opts,
	}
	in.SetBodyBytes(c.body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s answered %d %s %s, which the OpenAPI document (%s %s) does not allow: %s",
			req.Method, req.URL.Path, c.status, c.header.Get("Content-Type"), clip(c.body), req.Method, template, clip([]byte(err.Error())))
	}
}

// checkEvents fails t when an event of a job's stream does not match the
// document's event schemas. It checks the first 200 events and the last:
// each check costs about a millisecond (kin-openapi compiles the schema
// every time), and a flood of 30,000 events must not take half a minute.
// It runs once the events are read, never while reading them: a slow
// reader is one hqd disconnects.
func checkEvents(t testing.TB, evs []sseEvent) {
	t.Helper()
	for i, ev := range evs {
		if i < 200 || i == len(evs)-1 {
			checkEvent(t, ev)
		}
	}
}

// checkEvent fails t when one event does not match the document.
func checkEvent(t testing.TB, ev sseEvent) {
	t.Helper()
	a, err := loadAPI()
	if err != nil {
		t.Errorf("checking an event against the OpenAPI document: %v", err)
		return
	}
	schema := "JobEvent"
	switch ev.Type {
	case "done":
		schema = "DoneEvent"
	case "shutdown":
		schema = "ShutdownEvent"
	default:
		if ev.Data["kind"] != ev.Type {
			t.Errorf("event %d: type %q, kind %v; want them the same (SPEC §6.2)", ev.ID, ev.Type, ev.Data["kind"])
		}
	}
	b, _ := json.Marshal(ev.Data) // decoded from JSON: it encodes
	if err := a.schemaCheck(schema, b); err != nil {
		t.Errorf("event %d (%s) %s does not match the OpenAPI document's %s: %v", ev.ID, ev.Type, clip(b), schema, err)
	}
}

// schemaCheck validates a JSON value against one of the document's schemas.
func (a *api) schemaCheck(name string, body []byte) error {
	ref := a.doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("the document has no schema %s", name)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020())
}

// clip shortens what a failure prints.
func clip(b []byte) string {
	const limit = 600
	b = bytes.TrimSpace(b)
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
