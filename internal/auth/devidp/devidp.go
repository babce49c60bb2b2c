// Package devidp is the identity provider of `hqd dev` (SPEC §5.5): the
// subset of Cognito's JSON protocol the PWA and CLI use, answered locally,
// so the same client code signs in against it, cognito-local or Cognito.
// It signs RS256 tokens shaped like Cognito's and publishes their JWKS;
// hqd verifies them like any other issuer's. It is never wired into
// `hqd serve`.
package devidp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"golang.org/x/crypto/bcrypt"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/strictjson"
)

// Config configures the provider.
type Config struct {
	Dir        string // where its key and accounts are kept
	BaseURL    string // hqd's public URL; the issuer is {BaseURL}/dev/cognito/{PoolID}
	PoolID     string
	ClientID   string
	AccessTTL  time.Duration // 1 h when zero, as Cognito's default
	RefreshTTL time.Duration // 30 days when zero
	// Revoked tells a token hqd's logout revoked (issuer, origin_jti, jti):
	// the provider refuses it too, as Cognito does after RevokeToken.
	Revoked func(issuer, originJTI, jti string) bool
}

// Provider answers /dev/cognito/.
type Provider struct {
	cfg       Config
	log       *slog.Logger
	issuer    string
	signKey   jwk.Key
	publicSet []byte
	stateFile string
	sessions  *sessionStore
	throttle  *throttle

	mu sync.Mutex
	st *state
}

// New opens (creating) the provider's key and accounts under cfg.Dir.
func New(cfg Config, log *slog.Logger) (*Provider, error) {
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = time.Hour
	}
	if cfg.RefreshTTL == 0 {
		cfg.RefreshTTL = 30 * 24 * time.Hour
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("dev identity provider: %w", err)
	}
	raw, err := loadKey(filepath.Join(cfg.Dir, "signing-key.pem"))
	if err != nil {
		return nil, fmt.Errorf("dev identity provider key: %w", err)
	}
	key, err := jwk.Import(raw)
	if err != nil {
		return nil, err
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	kid := base64.RawURLEncoding.EncodeToString(tp[:12])
	_ = key.Set(jwk.KeyIDKey, kid)
	_ = key.Set(jwk.AlgorithmKey, jwa.RS256())
	pub, err := jwk.PublicKeyOf(raw.Public().(*rsa.PublicKey))
	if err != nil {
		return nil, err
	}
	_ = pub.Set(jwk.KeyIDKey, kid)
	_ = pub.Set(jwk.AlgorithmKey, jwa.RS256())
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	pubJSON, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	stateFile := filepath.Join(cfg.Dir, "accounts.json")
	st, err := loadState(stateFile)
	if err != nil {
		return nil, fmt.Errorf("dev identity provider accounts: %w", err)
	}
	sessions, err := openSessions(filepath.Join(cfg.Dir, "sessions"))
	if err != nil {
		return nil, fmt.Errorf("dev identity provider sessions: %w", err)
	}
	if len(st.Sessions) > 0 { // kept in accounts.json before: moved out once
		for h, s := range st.Sessions {
			if err := sessions.put(h, s); err != nil {
				return nil, fmt.Errorf("dev identity provider sessions: %w", err)
			}
		}
		st.Sessions = nil
		if err := st.save(stateFile); err != nil {
			return nil, fmt.Errorf("dev identity provider accounts: %w", err)
		}
	}
	return &Provider{
		cfg: cfg, log: log.With("pkg", "devidp"), issuer: Issuer(cfg.BaseURL, cfg.PoolID),
		signKey: key, publicSet: pubJSON, stateFile: stateFile, st: st, sessions: sessions, throttle: newThrottle(),
	}, nil
}

// Issuer is the issuer URL of a provider at baseURL.
func Issuer(baseURL, poolID string) string {
	return strings.TrimSuffix(baseURL, "/") + "/dev/cognito/" + poolID
}

// Endpoint is the Cognito endpoint clients use at baseURL.
func Endpoint(baseURL string) string { return strings.TrimSuffix(baseURL, "/") + "/dev/cognito/" }

// Issuer is the iss of the tokens this provider signs.
func (p *Provider) Issuer() string { return p.issuer }

// Routes mounts the protocol endpoint and the JWKS.
func (p *Provider) Routes(r chi.Router) {
	r.Post("/dev/cognito/", p.serveAction)
	r.Get("/dev/cognito/{pool}/.well-known/jwks.json", p.serveJWKS)
}

func (p *Provider) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if chi.URLParam(r, "pool") != p.cfg.PoolID {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(p.publicSet) // a client gone mid-answer is not our error
}

// cognitoError is an error in Cognito's wire shape.
type cognitoError struct {
	Type    string
	Message string
	Status  int // 400 when zero
}

func (e *cognitoError) Error() string { return e.Type + ": " + e.Message }

func errorf(typ, format string, args ...any) *cognitoError {
	return &cognitoError{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// serveAction dispatches on X-Amz-Target like Cognito's endpoint.
func (p *Provider) serveAction(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	action, ok := strings.CutPrefix(target, "AWSCognitoIdentityProviderService.")
	var body []byte
	var err error
	if ok {
		body, err = readBody(r)
	}
	var out any
	switch {
	case !ok:
		err = errorf("UnknownOperationException", "X-Amz-Target must name an AWSCognitoIdentityProviderService action")
	case err != nil:
	case action == "SignUp":
		out, err = p.signUp(body)
	case action == "ConfirmSignUp":
		out, err = p.confirmSignUp(body)
	case action == "InitiateAuth":
		out, err = p.initiateAuth(body, clientAddr(r))
	case action == "GetUser":
		out, err = p.getUser(body)
	case action == "GetTokensFromRefreshToken":
		out, err = p.getTokensFromRefreshToken(body)
	case action == "RevokeToken":
		out, err = p.revokeToken(body)
	default:
		err = errorf("UnknownOperationException", "the dev identity provider does not support %s", action)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if err != nil {
		ce, ok := err.(*cognitoError)
		if !ok {
			p.log.Error("dev identity provider failed", "action", action, "err", err)
			ce = &cognitoError{Type: "InternalErrorException", Message: "internal error", Status: http.StatusInternalServerError}
		}
		status := ce.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		w.Header().Set("X-Amzn-ErrorType", ce.Type)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": ce.Type, "message": ce.Message})
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return nil, errorf("InvalidParameterException", "the request body could not be read")
	}
	return b, nil
}

func decode(body []byte, v any) error {
	if err := strictjson.DecodeAllowUnknown(body, v); err != nil {
		return errorf("SerializationException", "the request body is not valid JSON for this action: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

func (p *Provider) checkClient(id string) error {
	if id != p.cfg.ClientID {
		return errorf("ResourceNotFoundException", "User pool client %s does not exist.", id)
	}
	return nil
}

type attribute struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

func (p *Provider) signUp(body []byte) (any, error) {
	var in struct {
		ClientID       string      `json:"ClientId"`
		Username       string      `json:"Username"`
		Password       string      `json:"Password"`
		UserAttributes []attribute `json:"UserAttributes"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := p.checkClient(in.ClientID); err != nil {
		return nil, err
	}
	email := strings.ToLower(strings.TrimSpace(in.Username))
	if !looksLikeEmail(email) {
		return nil, errorf("InvalidParameterException", "Username should be an email.")
	}
	if msg := passwordProblem(in.Password); msg != "" {
		return nil, errorf("InvalidPasswordException", "Password did not conform with policy: %s", msg)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(in.Password), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, exists := p.st.Users[email]; exists {
		return nil, errorf("UsernameExistsException", "An account with the given email already exists.")
	}
	u := &user{Sub: newUUID(), Email: email, PasswordHash: hash, Created: time.Now().UTC()}
	p.st.Users[email] = u
	if err := p.st.save(p.stateFile); err != nil {
		delete(p.st.Users, email)
		return nil, err
	}
	p.log.Info("dev user signed up", "user", auth.UserTag(u.Sub))
	return map[string]any{"UserConfirmed": true, "UserSub": u.Sub}, nil
}

func (p *Provider) confirmSignUp(body []byte) (any, error) {
	var in struct {
		ClientID string `json:"ClientId"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := p.checkClient(in.ClientID); err != nil {
		return nil, err
	}
	// Users are created confirmed; the code step is accepted so that client
	// code written for Cognito runs unchanged.
	return map[string]any{}, nil
}

type authResult struct {
	AccessToken  string `json:"AccessToken"`
	IDToken      string `json:"IdToken"`
	RefreshToken string `json:"RefreshToken,omitempty"`
	ExpiresIn    int    `json:"ExpiresIn"`
	TokenType    string `json:"TokenType"`
}

// clientAddr is the caller's IP, which the sign-in throttle counts by; an
// IPv6 caller by its /64, which one machine commonly has whole.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return host
}

func (p *Provider) initiateAuth(body []byte, addr string) (any, error) {
	var in struct {
		AuthFlow       string            `json:"AuthFlow"`
		ClientID       string            `json:"ClientId"`
		AuthParameters map[string]string `json:"AuthParameters"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := p.checkClient(in.ClientID); err != nil {
		return nil, err
	}
	var res *authResult
	var err error
	switch in.AuthFlow {
	case "USER_PASSWORD_AUTH":
		res, err = p.passwordAuth(in.AuthParameters["USERNAME"], in.AuthParameters["PASSWORD"], addr)
	case "REFRESH_TOKEN_AUTH", "REFRESH_TOKEN":
		res, err = p.refreshAuth(in.AuthParameters["REFRESH_TOKEN"])
	default:
		return nil, errorf("InvalidParameterException", "the dev identity provider supports USER_PASSWORD_AUTH and REFRESH_TOKEN_AUTH, not %q", in.AuthFlow)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"AuthenticationResult": res, "ChallengeParameters": map[string]string{}}, nil
}

func (p *Provider) passwordAuth(username, password, addr string) (*authResult, error) {
	email := strings.ToLower(strings.TrimSpace(username))
	if refused := p.throttle.attempt(email, addr); refused != nil {
		return nil, refused
	}
	p.mu.Lock()
	u := p.st.Users[email]
	p.mu.Unlock()
	// Cognito words a wrong password and an unknown user alike.
	wrong := errorf("NotAuthorizedException", "Incorrect username or password.")
	if u == nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password)) // same time either way
		p.throttle.failed(email)
		return nil, wrong
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)) != nil {
		p.throttle.failed(email)
		return nil, wrong
	}
	p.throttle.succeeded(email, addr)
	refresh := randomToken()
	origin := newUUID()
	if err := p.sessions.put(hashToken(refresh), &session{Sub: u.Sub, OriginJTI: origin, Expires: time.Now().Add(p.cfg.RefreshTTL).UTC()}); err != nil {
		return nil, err
	}
	res, err := p.issue(u, origin)
	if err != nil {
		return nil, err
	}
	res.RefreshToken = refresh
	p.log.Info("dev user signed in", "user", auth.UserTag(u.Sub))
	return res, nil
}

func (p *Provider) refreshAuth(token string) (*authResult, error) {
	s, err := p.sessions.get(hashToken(token))
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	var u *user
	if s != nil && time.Now().Before(s.Expires) {
		for _, cand := range p.st.Users {
			if cand.Sub == s.Sub {
				u = cand
			}
		}
	}
	p.mu.Unlock()
	if u == nil {
		return nil, errorf("NotAuthorizedException", "Invalid Refresh Token")
	}
	return p.issue(u, s.OriginJTI)
}

// getTokensFromRefreshToken is refresh with rotation, as Cognito does for
// app clients that rotate refresh tokens: the old token stops working and
// a new one is returned with the new tokens.
func (p *Provider) getTokensFromRefreshToken(body []byte) (any, error) {
	var in struct {
		ClientID     string `json:"ClientId"`
		RefreshToken string `json:"RefreshToken"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := p.checkClient(in.ClientID); err != nil {
		return nil, err
	}
	res, err := p.refreshAuth(in.RefreshToken)
	if err != nil {
		return nil, err
	}
	next := randomToken()
	p.mu.Lock() // one rotation of a token at a time: the second finds it gone
	defer p.mu.Unlock()
	old, err := p.sessions.get(hashToken(in.RefreshToken))
	if err != nil {
		return nil, err
	}
	if removed, err := p.sessions.remove(hashToken(in.RefreshToken)); err != nil || !removed || old == nil {
		return nil, errorf("NotAuthorizedException", "Invalid Refresh Token")
	}
	if err := p.sessions.put(hashToken(next), &session{Sub: old.Sub, OriginJTI: old.OriginJTI, Expires: time.Now().Add(p.cfg.RefreshTTL).UTC()}); err != nil {
		return nil, err
	}
	res.RefreshToken = next
	return map[string]any{"AuthenticationResult": res}, nil
}

// revokeToken ends the session of a refresh token, like Cognito's RevokeToken.
func (p *Provider) revokeToken(body []byte) (any, error) {
	var in struct {
		ClientID string `json:"ClientId"`
		Token    string `json:"Token"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := p.checkClient(in.ClientID); err != nil {
		return nil, err
	}
	if _, err := p.sessions.remove(hashToken(in.Token)); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

func (p *Provider) getUser(body []byte) (any, error) {
	var in struct {
		AccessToken string `json:"AccessToken"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	tok, err := jwt.Parse([]byte(in.AccessToken), jwt.WithKey(jwa.RS256(), p.signKey), jwt.WithIssuer(p.issuer), jwt.WithValidate(true))
	if err != nil {
		return nil, errorf("NotAuthorizedException", "Invalid Access Token")
	}
	var use string
	if tok.Get("token_use", &use) != nil || use != "access" {
		return nil, errorf("NotAuthorizedException", "Invalid Access Token")
	}
	if p.cfg.Revoked != nil {
		var origin string
		_ = tok.Get("origin_jti", &origin)
		jti, _ := tok.JwtID()
		if p.cfg.Revoked(p.issuer, origin, jti) {
			return nil, errorf("NotAuthorizedException", "Access Token has been revoked")
		}
	}
	sub, _ := tok.Subject()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range p.st.Users {
		if u.Sub == sub {
			return map[string]any{"Username": u.Sub, "UserAttributes": []attribute{
				{"sub", u.Sub}, {"email", u.Email}, {"email_verified", "true"},
			}}, nil
		}
	}
	return nil, errorf("UserNotFoundException", "User does not exist.")
}

// issue signs an access and an id token shaped like Cognito's.
func (p *Provider) issue(u *user, originJTI string) (*authResult, error) {
	now := time.Now().Truncate(time.Second)
	exp := now.Add(p.cfg.AccessTTL)
	event := newUUID()
	common := map[string]any{
		"sub": u.Sub, "iss": p.issuer, "origin_jti": originJTI, "event_id": event,
		"auth_time": now.Unix(), "iat": now.Unix(), "exp": exp.Unix(),
	}
	access := map[string]any{"client_id": p.cfg.ClientID, "token_use": "access", "scope": "aws.cognito.signin.user.admin", "jti": newUUID(), "username": u.Sub}
	id := map[string]any{"aud": p.cfg.ClientID, "token_use": "id", "email": u.Email, "email_verified": true, "cognito:username": u.Sub, "jti": newUUID()}
	at, err := p.sign(common, access)
	if err != nil {
		return nil, err
	}
	it, err := p.sign(common, id)
	if err != nil {
		return nil, err
	}
	return &authResult{AccessToken: at, IDToken: it, ExpiresIn: int(p.cfg.AccessTTL.Seconds()), TokenType: "Bearer"}, nil
}

func (p *Provider) sign(claims ...map[string]any) (string, error) {
	tok := jwt.New()
	for _, c := range claims {
		for k, v := range c {
			if err := tok.Set(k, v); err != nil {
				return "", fmt.Errorf("claim %s: %w", k, err)
			}
		}
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256(), p.signKey))
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return string(b), nil
}

func looksLikeEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && at < len(s)-1 && strings.Count(s, "@") == 1 && !strings.ContainsAny(s, " \t\r\n") && len(s) <= 128
}

// passwordProblem applies Cognito's default password policy.
func passwordProblem(pw string) string {
	var upper, lower, digit, symbol bool
	for _, r := range pw {
		switch {
		case 'A' <= r && r <= 'Z':
			upper = true
		case 'a' <= r && r <= 'z':
			lower = true
		case '0' <= r && r <= '9':
			digit = true
		case strings.ContainsRune("^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+- ", r):
			symbol = true
		}
	}
	switch {
	case len(pw) < 8:
		return "Password not long enough"
	case len(pw) > 256:
		return "Password is too long"
	case !upper:
		return "Password must have uppercase characters"
	case !lower:
		return "Password must have lowercase characters"
	case !digit:
		return "Password must have numeric characters"
	case !symbol:
		return "Password must have symbol characters"
	}
	return ""
}

// dummyHash makes an unknown user's sign-in take as long as a known one's.
// Made on first use: at package init it would cost every start of the
// binary, the job helper's included, a millisecond.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("dummy password for timing"), bcrypt.DefaultCost)
	return h
})

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte("hqd-dev-refresh:" + t))
	return hex.EncodeToString(h[:])
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
