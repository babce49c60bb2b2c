// Package openapi holds the OpenAPI 3.1 document of hqd's public routes,
// written by hand in openapi.json and embedded in the binary, and the
// handler that serves it at GET /api/openapi.json. It owns the document,
// not the routes: cmd/hqd's tests check that the two agree (every route of
// the router is documented, and every answer the integration tests receive
// validates against the document).
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

//go:embed openapi.json
var document []byte

// Document returns a copy of the OpenAPI document, as served.
func Document() []byte { return bytes.Clone(document) }

// Handler serves the document. It needs no token. The bytes change only with
// the binary, so the answer carries a strong ETag of them and asks to be
// revalidated (a client keeps its copy and gets a 304 until hqd is
// upgraded) rather than cached blindly for a while.
func Handler() http.Handler {
	sum := sha256.Sum256(document)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	length := strconv.Itoa(len(document))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", "no-cache")
		if matches(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", length)
		_, _ = w.Write(document) // a client gone mid-answer is not our error
	})
}

// matches says whether an If-None-Match header names etag (RFC 9110
// §13.1.2: a list, or *; weak comparison).
func matches(header, etag string) bool {
	for v := range strings.SplitSeq(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == "*" || v == etag {
			return true
		}
	}
	return false
}
