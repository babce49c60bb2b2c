package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Every secret a test sees (tokens, refresh tokens, STS keys, stream
// tickets, passwords), remembered from every request and answer that goes
// through do, so that every hqd this package starts has its whole log
// checked against all of them when it stops.
var seen sync.Map // secret → what it is

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

// note remembers a secret. Short tokens are test garbage ("abc"), and
// passwords of letters only are the weak ones tests send to be refused
// ("password"): both would match innocent log text.
func note(s, what string) {
	switch {
	case s == bannerPassword:
	case what == "password" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == "":
	case what != "password" && len(s) < 20:
	default:
		seen.Store(s, what)
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

// jwtShape is any JWT, whoever issued it.
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.`)

// leaks lists what of the secrets seen so far, or anything shaped like a
// JWT, hqd's output carries.
func leaks(logs string) []string {
	var out []string
	if m := jwtShape.FindString(logs); m != "" {
		out = append(out, "a JWT ("+m[:20]+"…)")
	}
	seen.Range(func(k, v any) bool {
		if strings.Contains(logs, k.(string)) {
			out = append(out, "a "+v.(string))
		}
		return true
	})
	return out
}

func TestCheckLogsCatches(t *testing.T) {
	remember([]byte(`{"AuthenticationResult":{"RefreshToken":"r-123456789012345678901"},"credentials":{"secretAccessKey":"s-123456789012345678901"}}`))
	for _, logs := range []string{`{"msg":"x","t":"r-123456789012345678901"}`, `{"msg":"s-123456789012345678901"}`, `{"auth":"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"}`} {
		if len(leaks(logs)) == 0 {
			t.Errorf("checkLogs let through %s", logs)
		}
	}
	seen.Delete("r-123456789012345678901")
	seen.Delete("s-123456789012345678901")
}
