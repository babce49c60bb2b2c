package auth_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/httpx"
)

const (
	testIssuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST"
	testClient = "client-ok"
)

// jwksServer serves the public halves of keys as a JWKS; keys can be
// swapped and fetches counted, and it can be taken down.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    map[string]*rsa.PrivateKey
	fetches atomic.Int32
	down    atomic.Bool
}

func newJWKS(t testing.TB, keys map[string]*rsa.PrivateKey) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range s.keys {
			set.Keys = append(set.Keys, map[string]string{
				"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()),
			})
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(keys map[string]*rsa.PrivateKey) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

var (
	keyOnce sync.Once
	keyA    *rsa.PrivateKey
	keyB    *rsa.PrivateKey
)

func testKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	keyOnce.Do(func() {
		keyA, _ = rsa.GenerateKey(rand.Reader, 2048)
		keyB, _ = rsa.GenerateKey(rand.Reader, 2048)
	})
	return keyA, keyB
}

// token builds a compact JWS from a header and claims, signed RS256 with key
// (or left unsigned when key is nil).
func token(t testing.TB, key *rsa.PrivateKey, hdr, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(c)
	if key == nil {
		return input + "."
	}
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

// rawToken is token with the payload given as JSON text: maps cannot say
// a name twice.
func rawToken(t testing.TB, key *rsa.PrivateKey, payload string) string {
	t.Helper()
	h, _ := json.Marshal(rs256("kid-a"))
	input := b64(h) + "." + b64([]byte(payload))
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

// withRaw is the access claims as JSON text with extra appended inside.
func withRaw(now time.Time, extra string) string {
	b, _ := json.Marshal(accessClaims(now))
	return strings.TrimSuffix(string(b), "}") + "," + extra + "}"
}

func accessClaims(now time.Time) map[string]any {
	return map[string]any{
		"sub": "3c6e2f1a-0b7d-4e8f-9a1b-2c3d4e5f6a7b", "iss": testIssuer, "client_id": testClient, "token_use": "access",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "auth_time": now.Unix(), "origin_jti": "o-1", "jti": "j-1",
		"username": "3c6e2f1a-0b7d-4e8f-9a1b-2c3d4e5f6a7b", "scope": "aws.cognito.signin.user.admin",
	}
}

func idClaims(now time.Time) map[string]any {
	c := accessClaims(now)
	delete(c, "client_id")
	delete(c, "username")
	c["token_use"], c["aud"], c["cognito:username"] = "id", testClient, "someone"
	return c
}

func with(c map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func rs256(kid string) map[string]any {
	return map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"}
}

type fixture struct {
	v    *auth.Verifier
	jwks *jwksServer
	reg  *prometheus.Registry
	now  *atomic.Pointer[time.Time]
}

func newFixture(t testing.TB) *fixture {
	a, _ := testKeys(t)
	js := newJWKS(t, map[string]*rsa.PrivateKey{"kid-a": a})
	reg := prometheus.NewRegistry()
	now := &atomic.Pointer[time.Time]{}
	n := time.Now()
	now.Store(&n)
	v, err := auth.NewVerifier(auth.VerifierConfig{
		Issuers:   []auth.Issuer{{URL: testIssuer, JWKSURL: js.URL}},
		ClientIDs: []string{testClient, "client-two"},
		Now:       func() time.Time { return *now.Load() },
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitReady(t, v)
	return &fixture{v: v, jwks: js, reg: reg, now: now}
}

func waitReady(t testing.TB, v *auth.Verifier) {
	t.Helper()
	for range 200 {
		if ok, _ := v.Ready(context.Background()); ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("JWKS never loaded")
}

func reason(err error) string {
	var ve *auth.VerifyError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return ""
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	a, b := testKeys(t)
	now := time.Now()
	pubDER, _ := x509.MarshalPKIXPublicKey(&a.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := func(secret []byte, claims map[string]any) string {
		h, _ := json.Marshal(map[string]any{"alg": "HS256", "kid": "kid-a"})
		c, _ := json.Marshal(claims)
		in := b64(h) + "." + b64(c)
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + b64(m.Sum(nil))
	}
	valid := token(t, a, rs256("kid-a"), accessClaims(now))
	parts := strings.Split(valid, ".")
	tamperedClaims, _ := json.Marshal(with(accessClaims(now), "sub", "someone-else"))

	for _, tc := range []struct {
		name   string
		token  string
		reason string // "" means accepted
	}{
		{"access token", valid, ""},
		{"id token", token(t, a, rs256("kid-a"), idClaims(now)), ""},
		{"id token with aud list", token(t, a, rs256("kid-a"), with(idClaims(now), "aud", []string{"other", "client-two"})), ""},
		{"second client", token(t, a, rs256("kid-a"), with(accessClaims(now), "client_id", "client-two")), ""},
		{"iat within skew", token(t, a, rs256("kid-a"), with(accessClaims(now), "iat", now.Add(20*time.Second).Unix())), ""},
		{"expired", token(t, a, rs256("kid-a"), with(accessClaims(now), "exp", now.Add(-time.Second).Unix())), auth.ReasonExpired},
		{"no exp", token(t, a, rs256("kid-a"), with(accessClaims(now), "exp", nil)), auth.ReasonNoExp},
		{"nbf in the future", token(t, a, rs256("kid-a"), with(accessClaims(now), "nbf", now.Add(time.Minute).Unix())), auth.ReasonNotYetValid},
		{"iat in the future", token(t, a, rs256("kid-a"), with(accessClaims(now), "iat", now.Add(time.Minute).Unix())), auth.ReasonNotYetValid},
		{"foreign issuer", token(t, a, rs256("kid-a"), with(accessClaims(now), "iss", "https://evil.example/pool")), auth.ReasonIssuer},
		{"issuer with trailing slash", token(t, a, rs256("kid-a"), with(accessClaims(now), "iss", testIssuer+"/")), auth.ReasonIssuer},
		{"client not allowed", token(t, a, rs256("kid-a"), with(accessClaims(now), "client_id", "client-x")), auth.ReasonClient},
		{"id token aud not allowed", token(t, a, rs256("kid-a"), with(idClaims(now), "aud", "client-x")), auth.ReasonClient},
		{"id token checked by client_id only", token(t, a, rs256("kid-a"), with(idClaims(now), "aud", "client-x", "client_id", testClient)), auth.ReasonClient},
		{"token_use refresh", token(t, a, rs256("kid-a"), with(accessClaims(now), "token_use", "refresh")), auth.ReasonTokenUse},
		{"token_use missing", token(t, a, rs256("kid-a"), with(accessClaims(now), "token_use", nil)), auth.ReasonTokenUse},
		{"alg none", token(t, nil, map[string]any{"alg": "none", "kid": "kid-a"}, accessClaims(now)), auth.ReasonAlgorithm},
		{"alg None", token(t, nil, map[string]any{"alg": "None", "kid": "kid-a"}, accessClaims(now)), auth.ReasonAlgorithm},
		{"HS256 with the public key as secret", hs(pubPEM, accessClaims(now)), auth.ReasonAlgorithm},
		{"RS512 header", token(t, a, map[string]any{"alg": "RS512", "kid": "kid-a"}, accessClaims(now)), auth.ReasonAlgorithm},
		// CVE-2022-21449: an ECDSA signature with r = s = 0.
		{"ES256 psychic signature", strings.Join([]string{b64([]byte(`{"alg":"ES256","kid":"kid-a"}`)), parts[1], b64(make([]byte, 64))}, "."), auth.ReasonAlgorithm},
		{"PS256 header", token(t, a, map[string]any{"alg": "PS256", "kid": "kid-a"}, accessClaims(now)), auth.ReasonAlgorithm},
		{"x5c header", token(t, a, map[string]any{"alg": "RS256", "kid": "kid-a", "x5c": []string{"MIIB"}}, accessClaims(now)), auth.ReasonHeader},
		{"b64 false", token(t, a, map[string]any{"alg": "RS256", "kid": "kid-a", "b64": false}, accessClaims(now)), auth.ReasonHeader},
		{"exp as a string", token(t, a, rs256("kid-a"), with(accessClaims(now), "exp", "9999999999")), auth.ReasonMalformed},
		{"exp with a fraction", token(t, a, rs256("kid-a"), with(accessClaims(now), "exp", float64(now.Add(time.Hour).Unix())+0.5)), auth.ReasonMalformed},
		{"exp as an exponent", rawToken(t, a, withRaw(now, `"exp":9.9e9`)), auth.ReasonMalformed},
		{"exp past year 9999", token(t, a, rs256("kid-a"), with(accessClaims(now), "exp", int64(1e15))), auth.ReasonMalformed},
		{"exp beyond int64", rawToken(t, a, withRaw(now, `"exp":1e400`)), auth.ReasonMalformed},
		{"negative iat", token(t, a, rs256("kid-a"), with(accessClaims(now), "iat", -1)), auth.ReasonMalformed},
		{"nbf null", rawToken(t, a, withRaw(now, `"nbf":null`)), auth.ReasonMalformed},
		{"sub given twice", rawToken(t, a, withRaw(now, `"sub":"another-user-0001"`)), auth.ReasonMalformed},
		{"Sub beside sub", rawToken(t, a, withRaw(now, `"Sub":"another-user-0001"`)), auth.ReasonMalformed},
		{"EXP instead of exp", rawToken(t, a, strings.Replace(withRaw(now, `"x":1`), `"exp"`, `"EXP"`, 1)), auth.ReasonMalformed},
		{"unknown kid", token(t, a, rs256("kid-zzz"), accessClaims(now)), auth.ReasonUnknownKID},
		{"path-like kid", token(t, a, rs256("../../dev/null"), accessClaims(now)), auth.ReasonUnknownKID},
		{"no kid", token(t, a, map[string]any{"alg": "RS256"}, accessClaims(now)), auth.ReasonHeader},
		{"signed by another key", token(t, b, rs256("kid-a"), accessClaims(now)), auth.ReasonSignature},
		{"tampered payload", parts[0] + "." + b64(tamperedClaims) + "." + parts[2], auth.ReasonSignature},
		{"null signature", parts[0] + "." + parts[1] + ".", auth.ReasonMalformed},
		{"truncated signature", parts[0] + "." + parts[1] + "." + parts[2][:20], auth.ReasonSignature},
		{"jku header", token(t, a, map[string]any{"alg": "RS256", "kid": "kid-a", "jku": "https://evil.example/jwks"}, accessClaims(now)), auth.ReasonHeader},
		{"embedded jwk", token(t, a, map[string]any{"alg": "RS256", "kid": "kid-a", "jwk": map[string]string{"kty": "RSA"}}, accessClaims(now)), auth.ReasonHeader},
		{"x5u header", token(t, a, map[string]any{"alg": "RS256", "kid": "kid-a", "x5u": "https://evil.example/cert"}, accessClaims(now)), auth.ReasonHeader},
		{"crit header", token(t, a, map[string]any{"alg": "RS256", "kid": "kid-a", "crit": []string{"exp"}}, accessClaims(now)), auth.ReasonHeader},
		{"missing sub", token(t, a, rs256("kid-a"), with(accessClaims(now), "sub", nil)), auth.ReasonSub},
		{"sub with slash", token(t, a, rs256("kid-a"), with(accessClaims(now), "sub", "a/../b")), auth.ReasonSub},
		{"sub too long", token(t, a, rs256("kid-a"), with(accessClaims(now), "sub", strings.Repeat("a", 129))), auth.ReasonSub},
		{"empty sub", token(t, a, rs256("kid-a"), with(accessClaims(now), "sub", "")), auth.ReasonSub},
		{"sub of wrong type", token(t, a, rs256("kid-a"), with(accessClaims(now), "sub", 42)), auth.ReasonMalformed},
		{"not a JWT", "hello", auth.ReasonMalformed},
		{"four segments", valid + ".x", auth.ReasonMalformed},
		{"garbage base64", "!!!.???.###", auth.ReasonMalformed},
		{"huge", strings.Repeat("a", 20000), auth.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := f.v.Verify(context.Background(), tc.token)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want accepted", err)
				}
				if id.Sub == "" || id.Prefix() != "users/"+id.Sub+"/hq/" {
					t.Errorf("identity %+v", id)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted a token that must be refused (%s)", tc.reason)
			}
			if got := reason(err); got != tc.reason {
				t.Errorf("reason = %q (%v), want %q", got, err, tc.reason)
			}
		})
	}
	if n := testutil.ToFloat64(counter(t, f.reg, auth.ReasonExpired)); n < 1 {
		t.Errorf("hqd_auth_failures_total{reason=expired} = %v", n)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, reason string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hqd_auth_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
				}
			}
		}
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return 0 })
}

func TestCachedTokenExpires(t *testing.T) {
	f := newFixture(t)
	a, _ := testKeys(t)
	now := *f.now.Load()
	tok := token(t, a, rs256("kid-a"), with(accessClaims(now), "exp", now.Add(time.Minute).Unix()))
	if _, err := f.v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	later := now.Add(2 * time.Minute)
	f.now.Store(&later)
	if _, err := f.v.Verify(context.Background(), tok); reason(err) != auth.ReasonExpired {
		t.Errorf("cached token past exp: %v, want expired", err)
	}
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	a, b := testKeys(t)
	now := *f.now.Load()
	tokA := token(t, a, rs256("kid-a"), accessClaims(now))
	if _, err := f.v.Verify(context.Background(), tokA); err != nil {
		t.Fatal(err)
	}
	// A new key appears: the unknown kid triggers one refetch (the start-up
	// fetch counts against the 30 s throttle, so let that pass first).
	later := now.Add(31 * time.Second)
	f.now.Store(&later)
	f.jwks.setKeys(map[string]*rsa.PrivateKey{"kid-b": b})
	before := f.jwks.fetches.Load()
	tokB := token(t, b, rs256("kid-b"), accessClaims(now))
	if _, err := f.v.Verify(context.Background(), tokB); err != nil {
		t.Fatalf("token of a rotated-in key: %v", err)
	}
	if got := f.jwks.fetches.Load() - before; got != 1 {
		t.Errorf("refetches for an unknown kid = %d, want 1", got)
	}
	// That fetch dropped kid-a: its token, although cached, is refused.
	if _, err := f.v.Verify(context.Background(), tokA); reason(err) != auth.ReasonUnknownKID {
		t.Errorf("token of a removed key: %v, want unknown_kid", err)
	}
	// Unknown kids within 30 s do not refetch again.
	before = f.jwks.fetches.Load()
	for i := range 20 {
		tok := token(t, a, rs256("kid-new-"+string(rune('a'+i))), accessClaims(now))
		if _, err := f.v.Verify(context.Background(), tok); reason(err) != auth.ReasonUnknownKID {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if got := f.jwks.fetches.Load() - before; got != 0 {
		t.Errorf("refetches within 30 s = %d, want 0", got)
	}
	// The JWKS goes down: the cached keys keep working.
	f.jwks.down.Store(true)
	later = later.Add(31 * time.Second)
	f.now.Store(&later)
	if _, err := f.v.Verify(context.Background(), token(t, b, rs256("kid-c"), accessClaims(now))); reason(err) != auth.ReasonUnknownKID {
		t.Errorf("unknown kid with the JWKS down: %v", err)
	}
	if _, err := f.v.Verify(context.Background(), token(t, b, rs256("kid-b"), with(accessClaims(now), "jti", "fresh"))); err != nil {
		t.Errorf("known key with the JWKS down: %v", err)
	}
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t)
	a, _ := testKeys(t)
	h := httpx.Observe(slog.New(slog.NewTextHandler(io.Discard, nil)), nil)(auth.Require(f.v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := auth.MustFromContext(r.Context())
		_, _ = io.WriteString(w, id.Sub)
	})))
	valid := token(t, a, rs256("kid-a"), accessClaims(time.Now()))
	for _, tc := range []struct {
		name, header string
		status       int
		challenge    string
	}{
		{"valid", "Bearer " + valid, 200, ""},
		{"lower-case scheme", "bearer " + valid, 200, ""},
		{"missing", "", 401, "Bearer"},
		{"basic", "Basic dXNlcjpwYXNz", 401, `Bearer error="invalid_token"`},
		{"empty bearer", "Bearer ", 401, `Bearer error="invalid_token"`},
		{"not a token", "Bearer abc", 401, `Bearer error="invalid_token"`},
		{"raw token without scheme", valid, 401, `Bearer error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status = %d %s, want %d", rec.Code, rec.Body, tc.status)
			}
			if tc.status == 401 {
				if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, tc.challenge) {
					t.Errorf("WWW-Authenticate = %q, want %q…", got, tc.challenge)
				}
				var e struct {
					Error struct{ Code, Message, RequestID string }
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code != "unauthorized" || e.Error.RequestID == "" {
					t.Errorf("body = %s", rec.Body)
				}
				if strings.Contains(rec.Body.String(), "expired") || strings.Contains(rec.Body.String(), "kid") {
					t.Errorf("the answer names the precise reason: %s", rec.Body)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	a, _ := testKeys(b)
	now := time.Now()
	b.Run("cold", func(b *testing.B) {
		toks := make([]string, b.N)
		for i := range toks {
			toks[i] = token(b, a, rs256("kid-a"), with(accessClaims(now), "jti", fmt.Sprint(i)))
		}
		b.ResetTimer()
		for i := range b.N {
			if _, err := f.v.Verify(context.Background(), toks[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		tok := token(b, a, rs256("kid-a"), accessClaims(now))
		if _, err := f.v.Verify(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := f.v.Verify(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
