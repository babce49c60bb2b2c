package main

import (
	"encoding/json"
	"testing"

	"github.com/quantapix/hqd/internal/itest"
)

// seen is every secret a test sees (tokens, refresh tokens, STS keys,
// stream tickets, passwords), remembered from every request and answer
// that goes through do, so that every hqd this package starts has its
// whole output checked against all of them when it stops.
var seen itest.Secrets

// secretFields are the JSON fields whose string values are secrets.
var secretFields = map[string]string{
	"accessToken": "access token", "AccessToken": "access token",
	"idToken": "id token", "IdToken": "id token",
	"refreshToken": "refresh token", "RefreshToken": "refresh token", "REFRESH_TOKEN": "refresh token",
	"secretAccessKey": "STS secret key", "sessionToken": "STS session token",
	"ticket": "stream ticket", "Password": "password", "PASSWORD": "password",
}

// bannerPassword is the example the dev banner prints on stderr; the
// tests use it too, so it is no secret.
const bannerPassword = "Passw0rd!"

// note remembers a secret, unless it is the banner's example.
func note(s, what string) {
	if s != bannerPassword {
		seen.Note(s, what)
	}
}

// remember notes the secrets in a JSON document.
func remember(b []byte) {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && secretFields[k] != "" {
					note(s, secretFields[k])
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
}

func TestCheckLogsCatches(t *testing.T) {
	remember([]byte(`{"AuthenticationResult":{"RefreshToken":"r-123456789012345678901"},"credentials":{"secretAccessKey":"s-123456789012345678901"}}`))
	for _, logs := range []string{`{"msg":"x","t":"r-123456789012345678901"}`, `{"msg":"s-123456789012345678901"}`, `{"auth":"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"}`} {
		if len(seen.Leaks(logs)) == 0 {
			t.Errorf("the scan let through %s", logs)
		}
	}
	seen.Forget("r-123456789012345678901")
	seen.Forget("s-123456789012345678901")
}
