// Package web serves what a browser gets at /. Until the PWA lands (issue 7)
// that is one static page that says so and shows how to use the API.
package web

import (
	_ "embed"
	"net/http"
)

//go:embed placeholder.html
var placeholder []byte

// Handler serves the placeholder page at / only; every other path is
// left to the router's 404, so /api/, /metrics and the like never fall
// back to a page.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(placeholder) // a client gone mid-answer is not our error
	})
}
