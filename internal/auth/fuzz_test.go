package auth_test

import (
	"context"
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
