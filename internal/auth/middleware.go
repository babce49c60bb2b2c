package auth

import (
	"context"
	"net/http"
	"strings"

	"github.com/quantapix/hqd/internal/httpx"
)

// TokenVerifier is what the middleware needs of a Verifier.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*Identity, error)
	CountFailure(reason string)
}

// unauthorized is the one answer every refused token gets: the reason is
// in the log and the metric, never in the answer (SPEC §5.1).
func unauthorized(err error, missing bool) *httpx.Error {
	challenge := `Bearer error="invalid_token", error_description="the access token is missing, malformed, expired or not trusted"`
	msg := "a valid bearer token is required"
	if missing {
		// RFC 6750 §3.1: no error code when the request carried no token.
		challenge = `Bearer`
		msg = "this route needs an Authorization: Bearer token"
	}
	return &httpx.Error{
		Status: http.StatusUnauthorized, Code: "unauthorized", Msg: msg, Err: err,
		Header: http.Header{"Www-Authenticate": {challenge}},
	}
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header; ok is false when there is none, and err is set when the header is
// there but not of that form.
func BearerToken(r *http.Request) (token string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// Require is middleware that admits only requests with a valid token and
// puts the identity in the context.
func Require(v TokenVerifier) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, present := BearerToken(r)
			if !present {
				v.CountFailure(ReasonMissing)
				httpx.WriteError(w, r, unauthorized(nil, true))
				return
			}
			if tok == "" {
				v.CountFailure(ReasonMalformed)
				httpx.WriteError(w, r, unauthorized(nil, false))
				return
			}
			id, err := v.Verify(r.Context(), tok)
			if err != nil {
				httpx.LoggerFrom(r.Context()).Info("token refused", "err", err)
				httpx.WriteError(w, r, unauthorized(err, false))
				return
			}
			httpx.SetUserTag(r.Context(), id.Tag())
			next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
		})
	}
}
