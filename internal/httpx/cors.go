package httpx

import (
	"net/http"

	"github.com/go-chi/cors"
)

// CORS answers preflights without authentication and allows only origins in
// the list (SPEC §3).
func CORS(origins []string) func(http.Handler) http.Handler {
	return cors.Handler(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete},
		// X-Amz-* and Amz-Sdk-*: what the AWS SDK sends to the dev identity
		// provider from a PWA on another origin (the Vite dev server).
		AllowedHeaders: []string{"Authorization", "Content-Type", "If-Match", "If-None-Match", "Last-Event-ID", "Range", "X-Request-Id",
			"X-Amz-Target", "X-Amz-User-Agent", "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request"},
		ExposedHeaders:   []string{"ETag", "X-Request-Id", "Retry-After", "Content-Range", "Last-Modified"},
		AllowCredentials: false,
		MaxAge:           600,
	})
}
