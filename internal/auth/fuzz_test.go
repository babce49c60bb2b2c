package auth_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: no input makes the verifier panic, and nothing forged is
// accepted (the fuzzer cannot sign with the test key).
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	a, _ := testKeys(f)
	valid := token(f, a, rs256("kid-a"), accessClaims(time.Now()))
	for _, s := range []string{valid, valid[:len(valid)-5], "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "", "...."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := fx.v.Verify(context.Background(), tok)
		if err == nil && tok != valid {
			t.Fatalf("accepted a token the fuzzer made: %q → %+v", tok, id)
		}
	})
}

// FuzzClaims signs whatever payload the fuzzer makes with the trusted key:
// an accepted token must name each claim hqd reads exactly once, spelled
// exactly, with whole-second dates — duplicates, case variants and
// fractional or out-of-range dates are refused, never resolved.
func FuzzClaims(f *testing.F) {
	fx := newFixture(f)
	a, _ := testKeys(f)
	now := time.Now()
	for _, extra := range []string{`"x":1`, `"sub":"other-0001"`, `"Sub":"other-0001"`, `"exp":9.9e9`, `"exp":1e400`, `"nbf":null`, `"iat":-1`, `"ISS":"x"`} {
		f.Add(withRaw(now, extra))
	}
	f.Fuzz(func(t *testing.T, payload string) {
		id, err := fx.v.Verify(context.Background(), rawToken(t, a, payload))
		if err != nil {
			return
		}
		dec := json.NewDecoder(strings.NewReader(payload))
		if tok, _ := dec.Token(); tok != json.Delim('{') {
			t.Fatalf("accepted a payload that is not an object: %q", payload)
		}
		seen := map[string]int{}
		for dec.More() {
			k, _ := dec.Token()
			name, _ := k.(string)
			var raw json.RawMessage
			if dec.Decode(&raw) != nil {
				t.Fatalf("accepted a malformed payload: %q", payload)
			}
			for _, c := range []string{"sub", "exp", "nbf", "iat", "iss", "token_use", "client_id", "aud"} {
				if strings.EqualFold(name, c) {
					if name != c {
						t.Fatalf("accepted %q spelled %q: %q → %+v", c, name, payload, id)
					}
					seen[c]++
					if (c == "exp" || c == "nbf" || c == "iat") && strings.ContainsAny(string(raw), ".eE\"") {
						t.Fatalf("accepted %s = %s: %q", c, raw, payload)
					}
				}
			}
		}
		for c, n := range seen {
			if n > 1 {
				t.Fatalf("accepted %q given %d times: %q → %+v", c, n, payload, id)
			}
		}
	})
}
