package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"
)

func TestServe(t *testing.T) {
	root := fstest.MapFS{
		"index.html":            {Data: []byte("<!doctype html><p>app")},
		"assets/app-1234.js":    {Data: []byte("console.log(1)")},
		"assets/app-1234.js.br": {Data: []byte("BROTLI")},
		"assets/app-1234.js.gz": {Data: []byte("GZIP")},
		"sw.js":                 {Data: []byte("self")},
	}
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) })
	h := handler(root, true, notFound)
	get := func(path string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, tc := range []struct {
		path, ae, body, enc, cc string
		status                  int
	}{
		{"/assets/app-1234.js", "br, gzip", "BROTLI", "br", "public, max-age=31536000, immutable", 200},
		{"/assets/app-1234.js", "gzip", "GZIP", "gzip", "public, max-age=31536000, immutable", 200},
		{"/assets/app-1234.js", "", "console.log(1)", "", "public, max-age=31536000, immutable", 200},
		{"/files/some/page", "", "<!doctype html><p>app", "", "no-cache", 200},
		{"/files/notes/todo.md", "", "<!doctype html><p>app", "", "no-cache", 200}, // a deep link to a file
		{"/", "", "<!doctype html><p>app", "", "no-cache", 200},
		{"/sw.js", "", "self", "", "no-cache", 200},
		{"/missing.js", "", "", "", "", 404},
		{"/api/files", "", "", "", "", 404},
		{"/metrics", "", "", "", "", 404},
	} {
		rec := get(tc.path, "Accept-Encoding", tc.ae)
		if rec.Code != tc.status {
			t.Errorf("GET %s = %d, want %d", tc.path, rec.Code, tc.status)
			continue
		}
		if tc.status != 200 {
			continue
		}
		if rec.Body.String() != tc.body || rec.Header().Get("Content-Encoding") != tc.enc || rec.Header().Get("Cache-Control") != tc.cc ||
			rec.Header().Get("ETag") == "" || rec.Header().Get("Vary") != "Accept-Encoding" {
			t.Errorf("GET %s (%s) = %q %v", tc.path, tc.ae, rec.Body.String(), rec.Header())
		}
		if tc.path == "/assets/app-1234.js" && rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("Content-Type = %q", rec.Header().Get("Content-Type"))
		}
		// Revalidation with the ETag answers 304 without a body.
		again := get(tc.path, "Accept-Encoding", tc.ae, "If-None-Match", rec.Header().Get("ETag"))
		if again.Code != 304 || again.Body.Len() != 0 {
			t.Errorf("GET %s with If-None-Match = %d (%d bytes), want 304", tc.path, again.Code, again.Body.Len())
		}
	}
	if a, b := get("/assets/app-1234.js", "Accept-Encoding", "br"), get("/assets/app-1234.js"); a.Header().Get("ETag") == b.Header().Get("ETag") {
		t.Error("the brotli and identity representations share an ETag")
	}
}
