package auth

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/quantapix/hqd/internal/httpx"
)

// Handlers serves the auth routes of SPEC §5.
type Handlers struct {
	Bucket   string // the store's bucket name ("" for the dir store)
	Region   string
	Sessions *Sessions
}

// PublicRoutes mounts the routes that need no access token.
func (h *Handlers) PublicRoutes(r chi.Router) {
	r.Method(http.MethodPost, "/api/auth/refresh", httpx.HandlerFunc(h.Sessions.refresh))
}

// Routes mounts the routes that need a verified token.
func (h *Handlers) Routes(r chi.Router) {
	r.Method(http.MethodGet, "/api/auth/credentials", httpx.HandlerFunc(h.credentials))
	r.Method(http.MethodPost, "/api/auth/logout", httpx.HandlerFunc(h.Sessions.logout))
}

type credentialsAnswer struct {
	UserID string `json:"userId"`
	Bucket string `json:"bucket"`
	Region string `json:"region"`
	Prefix string `json:"prefix"`
}

// credentials is GET /api/auth/credentials (SPEC §5.3).
func (h *Handlers) credentials(w http.ResponseWriter, r *http.Request) error {
	id := MustFromContext(r.Context())
	return httpx.WriteJSON(w, http.StatusOK, credentialsAnswer{UserID: id.Sub, Bucket: h.Bucket, Region: h.Region, Prefix: id.Prefix()})
}
