package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/auth/devidp"
	"github.com/quantapix/hqd/internal/certs"
	"github.com/quantapix/hqd/internal/files"
	"github.com/quantapix/hqd/internal/httpx"
	"github.com/quantapix/hqd/internal/openapi"
	"github.com/quantapix/hqd/internal/web"
)

// routes is the whole URL space of the public listener.
func (a *App) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(
		httpx.Observe(a.log, httpx.NewMetrics(a.reg)),
		httpx.SecurityHeaders(a.csp(), a.tlsConfig != nil),
		httpx.CORS(a.cfg.CORSOrigins),
		httpx.LimitBody(httpx.MaxJSONBody),
		httpx.BodyIdle(a.cfg.BodyIdleTimeout),
	)
	r.NotFound(web.Handler(http.HandlerFunc(httpx.NotFound)).ServeHTTP)
	r.MethodNotAllowed(httpx.MethodNotAllowed)

	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		_ = httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	r.Get("/readyz", a.readyz(false))
	r.Get("/api/config", a.apiConfig)
	r.Method(http.MethodGet, "/api/openapi.json", openapi.Handler())
	if a.devIDP != nil {
		a.devIDP.Routes(r)
	}
	authRoutes := &auth.Handlers{Bucket: a.bucket, Region: a.cfg.Region, Sessions: a.sessions}
	authRoutes.PublicRoutes(r)

	r.Group(func(r chi.Router) {
		r.Use(auth.Require(a.verifier))
		(&files.Handlers{Store: a.store, MaxUpload: a.cfg.MaxUpload}).Routes(r)
		authRoutes.Routes(r)
		a.jobRoutes.Routes(r)
	})
	a.jobRoutes.StreamRoutes(r)
	return r
}

// csp suits the PWA: its own scripts and styles only, and API calls to
// itself and to the Cognito endpoint it signs in with.
func (a *App) csp() string {
	connect := []string{"'self'"}
	if a.cfg.CognitoEndpoint != "" {
		if u, err := url.Parse(a.cfg.CognitoEndpoint); err == nil {
			connect = append(connect, u.Scheme+"://"+u.Host)
		}
	} else if a.devIDP == nil {
		connect = append(connect, "https://cognito-idp."+a.cfg.Region+".amazonaws.com")
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src " +
		strings.Join(connect, " ") + "; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
}

type configAnswer struct {
	Region          string `json:"region"`
	UserPoolID      string `json:"userPoolId"`
	ClientID        string `json:"clientId"`
	CognitoEndpoint string `json:"cognitoEndpoint,omitempty"`
}

// apiConfig is GET /api/config: how the PWA and CLI sign in.
func (a *App) apiConfig(w http.ResponseWriter, r *http.Request) {
	ans := configAnswer{Region: a.cfg.Region, UserPoolID: a.cfg.PoolID, ClientID: a.cfg.ClientIDs[0], CognitoEndpoint: a.cfg.CognitoEndpoint}
	if a.devIDP != nil {
		ans.CognitoEndpoint = devidp.Endpoint(a.publicURL)
	}
	_ = httpx.WriteJSON(w, http.StatusOK, ans)
}

type check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	// JWKS lists each key set's state by URL.
	JWKS map[string]bool `json:"jwks,omitempty"`
	// Isolation names how jobs are limited: cgroup2, cgroup1, unconfined or none.
	Isolation string `json:"isolation,omitempty"`
	// Sandbox names how jobs are kept apart: namespaces, none or off.
	Sandbox string `json:"sandbox,omitempty"`
	// Certificates lists each certificate's state by domain.
	Certificates map[string]certs.Status `json:"certificates,omitempty"`
}

// readyz reports each part by name; only what stops the API from serving
// fails it (SPEC §3). The public listener's answer says each part's state
// and a short reason; the metrics listener's (detailed) adds what only the
// operator may see: JWKS URLs, certificate errors, the jobs' host details.
func (a *App) readyz(detailed bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.serveReadyz(w, r, detailed)
	}
}

func (a *App) serveReadyz(w http.ResponseWriter, r *http.Request, detailed bool) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]check{}
	jwksOK, detail := a.verifier.Ready(ctx)
	checks["jwks"] = check{OK: jwksOK}
	if detailed {
		checks["jwks"] = check{OK: jwksOK, JWKS: detail}
	}
	if err := a.store.Ping(ctx); err != nil {
		httpx.LoggerFrom(r.Context()).Warn("store not reachable", "err", err)
		checks["store"] = check{OK: false, Detail: "the file store is not reachable"}
	} else {
		checks["store"] = check{OK: true, Detail: a.cfg.Storage}
	}
	if a.certs != nil {
		ok, detail := a.certs.Ready(time.Now())
		if !detailed {
			for name, st := range detail {
				st.Detail, _, _ = strings.Cut(st.Detail, ":") // "no certificate", without the CA's error
				detail[name] = st
			}
		}
		checks["tls"] = check{OK: ok, Certificates: detail}
	}
	jobsOK, why := a.jobRoutes.Available()
	jc := check{OK: jobsOK, Detail: why, Isolation: a.iso.Mode, Sandbox: a.sandbox}
	if detailed && !jobsOK {
		jc.Detail = a.jobsDetail()
	}
	checks["jobs"] = jc // reported, never failing readiness: the job routes answer 503 themselves
	status, code := "ready", http.StatusOK
	if !checks["jwks"].OK || !checks["store"].OK || (a.certs != nil && !checks["tls"].OK) {
		status, code = "not_ready", http.StatusServiceUnavailable
	}
	_ = httpx.WriteJSON(w, code, map[string]any{"status": status, "checks": checks})
}

// metricsHandler serves the metrics listener: /metrics, and /readyz with
// the operator's details.
func (a *App) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	mux.Handle("/readyz", a.readyz(true))
	return mux
}
