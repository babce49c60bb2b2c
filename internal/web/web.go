// Package web serves the PWA (web/, built by `make web` into dist/ and
// embedded in the binary) at /, with the SPA fallback and cache headers
// of a static host. A binary built without the app serves a page that
// says so. Paths of the API and of operations are never answered here.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed all:dist
var dist embed.FS

//go:embed placeholder.html
var placeholder []byte

// reserved are the paths the app's fallback never covers (SPEC §3).
var reserved = []string{"/api/", "/dev/", "/metrics", "/healthz", "/readyz"}

// Built says whether the binary carries the app.
func Built() bool {
	_, err := fs.Stat(dist, "dist/index.html")
	return err == nil
}

// Handler serves the app for GET and HEAD requests and hands everything
// else, and every reserved path, to notFound.
func Handler(notFound http.Handler) http.Handler {
	root, _ := fs.Sub(dist, "dist")
	files := http.FileServerFS(root)
	built := Built()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			notFound.ServeHTTP(w, r)
			return
		}
		for _, res := range reserved {
			if p == strings.TrimSuffix(res, "/") || strings.HasPrefix(p, res) {
				notFound.ServeHTTP(w, r)
				return
			}
		}
		if !built {
			if p != "/" {
				notFound.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(placeholder) // a client gone mid-answer is not our error
			return
		}
		name := strings.TrimPrefix(path.Clean(p), "/")
		if st, err := fs.Stat(root, name); name != "" && err == nil && !st.IsDir() {
			if strings.HasPrefix(name, "assets/") {
				// Hashed names: a file never changes under its name.
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				w.Header().Set("Cache-Control", "no-cache")
			}
			files.ServeHTTP(w, r)
			return
		}
		if path.Ext(name) != "" && name != "index.html" {
			notFound.ServeHTTP(w, r) // a missing file, not a page of the app
			return
		}
		// Every other path is a page of the single-page app.
		index, _ := fs.ReadFile(root, "index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(index) // as above
	})
}
