package auth

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quantapix/hqd/internal/strictjson"
)

// Issuer is one trusted token issuer and where its keys are published.
type Issuer struct {
	URL     string // the exact "iss" value
	JWKSURL string // defaults to URL + "/.well-known/jwks.json"
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Issuers   []Issuer
	ClientIDs []string // access tokens' client_id, id tokens' aud
	// Skew tolerated on nbf and iat; 30 s when zero. exp is strict.
	Skew time.Duration
	// CacheSize bounds the cache of verified tokens; 10000 when zero.
	CacheSize int
	// RefreshInterval is the longest time between two JWKS fetches; 1 h when zero.
	RefreshInterval time.Duration
	// UnknownKIDInterval is the least time between two fetches caused by an
	// unknown kid or a missing key set; 30 s when zero.
	UnknownKIDInterval time.Duration
	HTTPClient         *http.Client
	Now                func() time.Time // for tests
	// Revoked, when set, refuses tokens revoked by logout (Revocations.Revoked).
	Revoked func(*Identity) bool
}

// Reasons a token is refused; they label hqd_auth_failures_total.
const (
	ReasonMissing         = "missing"
	ReasonMalformed       = "malformed"
	ReasonAlgorithm       = "algorithm"
	ReasonHeader          = "header"
	ReasonIssuer          = "issuer"
	ReasonJWKSUnavailable = "jwks_unavailable"
	ReasonUnknownKID      = "unknown_kid"
	ReasonKey             = "key"
	ReasonSignature       = "signature"
	ReasonNoExp           = "missing_exp"
	ReasonExpired         = "expired"
	ReasonNotYetValid     = "not_yet_valid"
	ReasonTokenUse        = "token_use"
	ReasonClient          = "client"
	ReasonSub             = "sub"
	ReasonRevoked         = "revoked"
)

// VerifyError says why a token was refused. The reason is for logs and
// metrics; clients only ever see a generic message.
type VerifyError struct {
	Reason string
	Err    error
}

func (e *VerifyError) Error() string {
	if e.Err != nil {
		return "token refused (" + e.Reason + "): " + e.Err.Error()
	}
	return "token refused (" + e.Reason + ")"
}

func (e *VerifyError) Unwrap() error { return e.Err }

func refuse(reason string, format string, args ...any) error {
	var err error
	if format != "" {
		err = fmt.Errorf(format, args...)
	}
	return &VerifyError{Reason: reason, Err: err}
}

// Verifier checks bearer tokens as SPEC §5.1 says. It is safe for
// concurrent use; Start must be called before Verify can succeed.
type Verifier struct {
	cfg      VerifierConfig
	log      *slog.Logger
	issuers  map[string]*issuerKeys
	clients  map[string]bool
	cache    *lru.Cache[[32]byte, *cachedIdentity]
	failures *prometheus.CounterVec
	revoked  func(*Identity) bool

	cacheCancel context.CancelFunc
	jwks        atomic.Pointer[jwk.Cache] // set by Start, which may run after requests begin
}

type cachedIdentity struct {
	id   *Identity
	ring *keyring // the key set it was verified with; a new set means verify again
}

// issuerKeys follows one issuer's JWKS.
type issuerKeys struct {
	Issuer
	res  atomic.Pointer[httprc.ResourceBase[jwk.Set]]
	ring atomic.Pointer[keyring]

	mu          sync.Mutex
	lastRefresh time.Time
}

// keyring is one fetched JWKS, with its RSA signing keys ready to use.
type keyring struct {
	set  jwk.Set
	keys map[string]*rsa.PublicKey // by kid; only RSA keys usable for RS256
}

// NewVerifier makes a verifier; it fetches nothing until Start.
func NewVerifier(cfg VerifierConfig, log *slog.Logger, reg prometheus.Registerer) (*Verifier, error) {
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("no token issuer configured")
	}
	if len(cfg.ClientIDs) == 0 {
		return nil, errors.New("no app client id configured")
	}
	if cfg.Skew == 0 {
		cfg.Skew = 30 * time.Second
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = time.Hour
	}
	if cfg.UnknownKIDInterval == 0 {
		cfg.UnknownKIDInterval = 30 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cache, err := lru.New[[32]byte, *cachedIdentity](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("making token cache: %w", err)
	}
	v := &Verifier{
		cfg:     cfg,
		log:     log.With("pkg", "auth"),
		issuers: map[string]*issuerKeys{},
		clients: map[string]bool{},
		cache:   cache,
		revoked: cfg.Revoked,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hqd_auth_failures_total", Help: "Refused bearer tokens by reason.",
		}, []string{"reason"}),
	}
	for _, is := range cfg.Issuers {
		if is.JWKSURL == "" {
			is.JWKSURL = strings.TrimSuffix(is.URL, "/") + "/.well-known/jwks.json"
		}
		v.issuers[is.URL] = &issuerKeys{Issuer: is}
	}
	for _, c := range cfg.ClientIDs {
		v.clients[c] = true
	}
	if reg != nil {
		reg.MustRegister(v.failures)
	}
	return v, nil
}

// Start begins fetching every issuer's JWKS in the background. It does not
// wait for the first fetch: hqd may serve that JWKS itself (the dev identity
// provider), so Start is called once the listener is up; readiness comes
// from Ready.
func (v *Verifier) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	cache, err := jwk.NewCache(ctx, httprc.NewClient())
	if err != nil {
		cancel()
		return fmt.Errorf("starting JWKS cache: %w", err)
	}
	v.cacheCancel = cancel
	v.jwks.Store(cache)
	for _, is := range v.issuers {
		err := cache.Register(ctx, is.JWKSURL,
			jwk.WithHTTPClient(v.cfg.HTTPClient),
			jwk.WithWaitReady(false),
			jwk.WithMinInterval(min(time.Minute, v.cfg.RefreshInterval)),
			jwk.WithMaxInterval(v.cfg.RefreshInterval),
		)
		if err != nil {
			return fmt.Errorf("registering JWKS %s: %w", is.JWKSURL, err)
		}
		res, err := cache.LookupResource(ctx, is.JWKSURL)
		if err != nil {
			return fmt.Errorf("looking up JWKS %s: %w", is.JWKSURL, err)
		}
		is.res.Store(res)
	}
	return nil
}

// Close stops the background refreshes.
func (v *Verifier) Close() error {
	if v.cacheCancel != nil {
		v.cacheCancel()
	}
	return nil
}

// Ready reports, per JWKS URL, whether a key set has been loaded. The API can
// serve once at least one has: hqd's default trusts both Cognito issuer
// formats, which publish the same keys.
func (v *Verifier) Ready(ctx context.Context) (ok bool, detail map[string]bool) {
	detail = map[string]bool{}
	for _, is := range v.issuers {
		loaded := is.keyring() != nil
		if !loaded {
			// Do not wait for the backoff of a failed first fetch.
			go v.refresh(context.WithoutCancel(ctx), is)
		}
		detail[is.JWKSURL] = loaded
		ok = ok || loaded
	}
	return ok, detail
}

// keyring returns the issuer's current key set, rebuilding the RSA key map
// when the cache has fetched a new set.
func (is *issuerKeys) keyring() *keyring {
	res := is.res.Load()
	if res == nil {
		return nil
	}
	set := res.Resource()
	if set == nil {
		return nil
	}
	if r := is.ring.Load(); r != nil && r.set == set {
		return r
	}
	r := &keyring{set: set, keys: map[string]*rsa.PublicKey{}}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		kid, ok := k.KeyID()
		if !ok || k.KeyType() != jwa.RSA() {
			continue
		}
		if alg, ok := k.Algorithm(); ok && alg.String() != jwa.RS256().String() {
			continue
		}
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			continue
		}
		var pub rsa.PublicKey
		if err := jwk.Export(k, &pub); err != nil {
			continue
		}
		r.keys[kid] = &pub
	}
	is.ring.Store(r)
	return r
}

// refresh fetches the issuer's JWKS now unless that was done in the last
// UnknownKIDInterval; it reports whether it fetched.
func (v *Verifier) refresh(ctx context.Context, is *issuerKeys) bool {
	is.mu.Lock()
	now := v.cfg.Now()
	cache := v.jwks.Load()
	if now.Sub(is.lastRefresh) < v.cfg.UnknownKIDInterval || cache == nil {
		is.mu.Unlock()
		return false
	}
	is.lastRefresh = now
	is.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cache.Refresh(ctx, is.JWKSURL); err != nil {
		// The cache keeps the last good set; say so once per attempt.
		v.log.Warn("jwks refresh failed", "url", is.JWKSURL, "err", err)
		return false
	}
	return true
}

// Verify checks token and returns its identity, or a *VerifyError.
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	id, err := v.verify(ctx, token)
	if err != nil {
		var ve *VerifyError
		if !errors.As(err, &ve) {
			ve = &VerifyError{Reason: ReasonMalformed, Err: err}
			err = ve
		}
		v.failures.WithLabelValues(ve.Reason).Inc()
		return nil, err
	}
	return id, nil
}

// CountFailure counts a refusal decided outside Verify (e.g. no header).
func (v *Verifier) CountFailure(reason string) { v.failures.WithLabelValues(reason).Inc() }

type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
	Jku  json.RawMessage `json:"jku"`
	X5u  json.RawMessage `json:"x5u"`
	Jwk  json.RawMessage `json:"jwk"`
	X5c  json.RawMessage `json:"x5c"`
}

type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud must be a string or a list of strings")
	}
	*a = l
	return nil
}

type claims struct {
	Iss       string          `json:"iss"`
	Sub       *string         `json:"sub"`
	Exp       json.RawMessage `json:"exp"` // numericDate reads them: a
	Nbf       json.RawMessage `json:"nbf"` // json.Number would take a
	Iat       json.RawMessage `json:"iat"` // string ("123") too
	TokenUse  string          `json:"token_use"`
	ClientID  string          `json:"client_id"`
	Aud       audience        `json:"aud"`
	OriginJTI string          `json:"origin_jti"`
	JTI       string          `json:"jti"`
	Username  string          `json:"username"`
	CUsername string          `json:"cognito:username"`
}

// maxTokenLen bounds what is parsed at all; Cognito's tokens are ~1 KB.
const maxTokenLen = 16 << 10

// tokenSum is the cache key of a token. Hashing through a stack buffer
// spares the copy []byte(token) would put on the heap for every request.
func tokenSum(token string) [sha256.Size]byte {
	var buf [4 << 10]byte
	if len(token) > len(buf) {
		return sha256.Sum256([]byte(token))
	}
	return sha256.Sum256(append(buf[:0], token...))
}

func (v *Verifier) verify(ctx context.Context, token string) (*Identity, error) {
	if len(token) == 0 || len(token) > maxTokenLen {
		return nil, refuse(ReasonMalformed, "token length %d", len(token))
	}
	now := v.cfg.Now()
	sum := tokenSum(token)
	if c, ok := v.cache.Get(sum); ok {
		if now.Before(c.id.Expires) && v.issuers[c.id.Issuer].keyring() == c.ring {
			if v.revoked != nil && v.revoked(c.id) {
				return nil, refuse(ReasonRevoked, "")
			}
			return c.id, nil
		}
		v.cache.Remove(sum)
	}

	h64, rest, ok1 := strings.Cut(token, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") || h64 == "" || p64 == "" {
		return nil, refuse(ReasonMalformed, "not a compact JWS")
	}
	var hdr header
	if err := decodeSegment(h64, &hdr); err != nil {
		return nil, refuse(ReasonMalformed, "header: %w", err)
	}
	if hdr.Alg != "RS256" {
		return nil, refuse(ReasonAlgorithm, "alg %q", hdr.Alg)
	}
	if s64 == "" {
		return nil, refuse(ReasonMalformed, "no signature")
	}
	if hdr.Kid == "" {
		return nil, refuse(ReasonHeader, "no kid")
	}
	// Cognito never sends these; a token that carries them is trying to
	// choose its own key or change how it is verified.
	if hdr.Crit != nil || hdr.B64 != nil || hdr.Jku != nil || hdr.X5u != nil || hdr.Jwk != nil || hdr.X5c != nil {
		return nil, refuse(ReasonHeader, "header names its own key or extensions")
	}
	var c claims
	if err := decodeSegment(p64, &c); err != nil {
		return nil, refuse(ReasonMalformed, "payload: %w", err)
	}
	exp, nbf, iat, err := numericDate(c.Exp), numericDate(c.Nbf), numericDate(c.Iat), error(nil)
	for _, d := range []dateClaim{exp, nbf, iat} {
		if d.err != nil {
			err = d.err
		}
	}
	if err != nil {
		return nil, refuse(ReasonMalformed, "payload: %w", err)
	}
	is, ok := v.issuers[c.Iss]
	if !ok {
		return nil, refuse(ReasonIssuer, "issuer not trusted")
	}
	ring := is.keyring()
	if ring == nil && v.refresh(ctx, is) {
		ring = is.keyring()
	}
	if ring == nil {
		return nil, refuse(ReasonJWKSUnavailable, "no key set loaded for %s", is.JWKSURL)
	}
	key, ok := ring.keys[hdr.Kid]
	if !ok {
		if _, anyKey := ring.set.LookupKeyID(hdr.Kid); anyKey {
			return nil, refuse(ReasonKey, "key %q is not an RS256 signing key", hdr.Kid)
		}
		if v.refresh(ctx, is) {
			ring = is.keyring()
			key, ok = ring.keys[hdr.Kid]
		}
		if !ok {
			return nil, refuse(ReasonUnknownKID, "no key %q", hdr.Kid)
		}
	}
	if _, err := jws.VerifyCompactFast(key, []byte(token), jwa.RS256()); err != nil {
		return nil, refuse(ReasonSignature, "%w", err)
	}

	// The claims were decoded from the very bytes just verified.
	if !exp.set {
		return nil, refuse(ReasonNoExp, "")
	}
	if !now.Before(exp.t) {
		return nil, refuse(ReasonExpired, "expired %s", exp.t.Format(time.RFC3339))
	}
	if nbf.set && nbf.t.After(now.Add(v.cfg.Skew)) {
		return nil, refuse(ReasonNotYetValid, "nbf in the future")
	}
	if iat.set && iat.t.After(now.Add(v.cfg.Skew)) {
		return nil, refuse(ReasonNotYetValid, "iat in the future")
	}
	id := &Identity{TokenUse: c.TokenUse, Issuer: c.Iss, Expires: exp.t, OriginJTI: c.OriginJTI, JTI: c.JTI}
	switch c.TokenUse {
	case "access":
		if !v.clients[c.ClientID] {
			return nil, refuse(ReasonClient, "client_id not allowed")
		}
		id.ClientID, id.Username = c.ClientID, c.Username
	case "id":
		i := slices.IndexFunc(c.Aud, func(a string) bool { return v.clients[a] })
		if i < 0 {
			return nil, refuse(ReasonClient, "aud not allowed")
		}
		id.ClientID, id.Username = c.Aud[i], c.CUsername
	default:
		return nil, refuse(ReasonTokenUse, "token_use %q", c.TokenUse)
	}
	if c.Sub == nil || !ValidSub(*c.Sub) {
		return nil, refuse(ReasonSub, "missing or malformed sub")
	}
	id.Sub = *c.Sub
	if v.revoked != nil && v.revoked(id) {
		return nil, refuse(ReasonRevoked, "")
	}
	v.cache.Add(sum, &cachedIdentity{id: id, ring: ring})
	return id, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return fmt.Errorf("bad base64url: %w", err)
	}
	// Exact, case-sensitive names and none twice: {"sub":…,"Sub":…} must
	// not leave the choice to encoding/json. Names hqd does not read (a
	// Cognito token carries many) are skipped.
	return strictjson.DecodeAllowUnknown(b, v)
}

// maxDate bounds a NumericDate: 9999-12-31, past any real token and far
// from int64's edge (where float conversions saturate on some CPUs).
const maxDate = 253402300799

type dateClaim struct {
	t   time.Time
	set bool
	err error
}

// numericDate reads exp, nbf or iat: whole seconds since 1970 (RFC 7519
// §2), an integer from 0 to maxDate; fractions and exponents are refused.
func numericDate(raw json.RawMessage) dateClaim {
	if raw == nil {
		return dateClaim{}
	}
	sec, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || sec < 0 || sec > maxDate {
		return dateClaim{err: fmt.Errorf("a date claim is %.40q, not whole seconds from 0 to %d", raw, int64(maxDate))}
	}
	return dateClaim{t: time.Unix(sec, 0), set: true}
}
