// Package web serves the PWA (web/, built by `make web` into dist/ and
// embedded in the binary) at /, with the SPA fallback and cache headers
// of a static host. A binary built without the app serves a page that
// says so. Paths of the API and of operations are never answered here.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
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
	return handler(root, Built(), notFound)
}

func handler(root fs.FS, built bool, notFound http.Handler) http.Handler {
	files := &fileServer{root: root}
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
			cc := "no-cache"
			if strings.HasPrefix(name, "assets/") {
				cc = "public, max-age=31536000, immutable" // hashed names never change
			}
			files.serve(w, r, name, cc)
			return
		}
		// The app's files screen names a user's file in its URL
		// (/files/notes/todo.md): a page, whatever its extension.
		if path.Ext(name) != "" && name != "index.html" && !strings.HasPrefix(p, "/files/") {
			notFound.ServeHTTP(w, r) // a missing file, not a page of the app
			return
		}
		// Every other path is a page of the single-page app.
		files.serve(w, r, "index.html", "no-cache")
	})
}

// fileServer serves embedded files with strong ETags (so revalidation
// answers 304) and their precompressed .br or .gz twins when the client
// takes them.
type fileServer struct {
	root   fs.FS
	assets sync.Map // file name → *asset, for the files that exist
}

// asset is one embedded file, read once: embed.FS copies a file on every
// ReadFile, and the app's script is 65 KB even as brotli.
type asset struct {
	data []byte
	etag string
}

func (f *fileServer) load(name string) (*asset, bool) {
	if a, ok := f.assets.Load(name); ok {
		return a.(*asset), true
	}
	data, err := fs.ReadFile(f.root, name)
	if err != nil {
		return nil, false // not cached: the names that exist are few, the others are not
	}
	sum := sha256.Sum256(data)
	a, _ := f.assets.LoadOrStore(name, &asset{data: data, etag: `"` + hex.EncodeToString(sum[:12]) + `"`})
	return a.(*asset), true
}

func (f *fileServer) serve(w http.ResponseWriter, r *http.Request, name, cacheControl string) {
	a, enc := (*asset)(nil), ""
	ae := r.Header.Get("Accept-Encoding")
	for _, c := range []struct{ ext, enc string }{{".br", "br"}, {".gz", "gzip"}} {
		if strings.Contains(ae, c.enc) {
			if twin, ok := f.load(name + c.ext); ok {
				a, enc = twin, c.enc
				break
			}
		}
	}
	if a == nil {
		var ok bool
		if a, ok = f.load(name); !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
	}
	h := w.Header()
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", cacheControl)
	h.Set("Vary", "Accept-Encoding")
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		h.Set("Content-Type", ct)
	} else if strings.HasSuffix(name, ".webmanifest") {
		h.Set("Content-Type", "application/manifest+json")
	}
	if enc != "" {
		h.Set("Content-Encoding", enc)
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.data))
}
