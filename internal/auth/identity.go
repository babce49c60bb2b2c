// Package auth owns who is asking: verification of Cognito JWTs against the
// issuers' JWKS (SPEC §5.1), the middleware that puts the verified identity in
// the request context, and the auth routes. The dev identity provider of
// `hqd dev` lives in auth/devidp. auth does not know about files or jobs; they
// ask FromContext for the identity and build their keys from it.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Identity is a verified token's subject.
type Identity struct {
	Sub       string    // the user id; matches ^[A-Za-z0-9-]{1,128}$
	Username  string    // Cognito's username, for display only
	TokenUse  string    // "access" or "id"
	ClientID  string    // the app client the token was issued to
	Issuer    string    // the issuer that signed it
	Expires   time.Time // exp
	OriginJTI string    // origin_jti: shared by the tokens of one sign-in
	JTI       string
}

// Prefix is the user's root in the store: every key of theirs starts with it.
func (id *Identity) Prefix() string { return "users/" + id.Sub + "/hq/" }

// Tag is a short non-reversible tag of the user for logs, so lines of one
// user can be grouped without printing the id itself.
func (id *Identity) Tag() string { return UserTag(id.Sub) }

// UserTag is the log tag of sub.
func UserTag(sub string) string {
	h := sha256.Sum256([]byte("hqd-user:" + sub))
	return hex.EncodeToString(h[:6])
}

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the verified identity of the request, if any.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok
}

// MustFromContext returns the verified identity; it panics when the route is
// not behind the auth middleware, which is a wiring bug.
func MustFromContext(ctx context.Context) *Identity {
	id, ok := FromContext(ctx)
	if !ok {
		panic("auth: route is not behind the auth middleware")
	}
	return id
}

// ValidSub reports whether sub is a well-formed user id (SPEC §4). It is the
// only thing that keeps a user's keys under their own prefix, so it is strict.
func ValidSub(sub string) bool {
	if len(sub) == 0 || len(sub) > 128 {
		return false
	}
	for i := 0; i < len(sub); i++ {
		c := sub[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
