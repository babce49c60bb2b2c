package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/quantapix/hqd/internal/atomicfile"
)

// session is what hq keeps between commands: where hqd is, the user's
// tokens and, after a refresh, their STS credentials. It is a secret: the
// file is readable by its owner only.
type session struct {
	Endpoint        string       `json:"endpoint"`
	Email           string       `json:"email"`
	UserID          string       `json:"userId"`
	ClientID        string       `json:"clientId"`
	Region          string       `json:"region"`
	CognitoEndpoint string       `json:"cognitoEndpoint"`
	AccessToken     string       `json:"accessToken"`
	IDToken         string       `json:"idToken"`
	RefreshToken    string       `json:"refreshToken"`
	Expires         time.Time    `json:"expires"`
	Bucket          string       `json:"bucket,omitempty"`
	Prefix          string       `json:"prefix,omitempty"`
	Credentials     *credentials `json:"credentials,omitempty"`
}

// credentials are the STS credentials the refresh route hands out, scoped
// to the user's prefix (SPEC §5.2).
type credentials struct {
	AccessKeyID     string    `json:"accessKeyId"`
	SecretAccessKey string    `json:"secretAccessKey"`
	SessionToken    string    `json:"sessionToken"`
	Expiration      time.Time `json:"expiration"`
}

// errSessionEnded: the refresh token was refused; nothing more can be
// done until the user signs in again.
var errSessionEnded = errors.New("the session has ended (signed out, or unused for too long): run hq login again")

// refreshMargin: tokens and credentials this close to expiry are renewed
// before a command uses them, so a long sync does not run out midway.
const refreshMargin = 5 * time.Minute

// configDir is $HQ_CONFIG_DIR, or hq/ in the user's config folder.
func configDir(e env) (string, error) {
	if d := e.getenv("HQ_CONFIG_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no folder for hq's session: set HQ_CONFIG_DIR (%v)", err)
	}
	return filepath.Join(d, "hq"), nil
}

// sessions loads and saves the session file of one config folder, and
// keeps the session in memory for a command's many requests.
type sessions struct {
	dir  string
	http *http.Client

	mu  sync.Mutex
	cur *session // never changed in place once shared: a refresh makes a new one
}

func newSessions(e env) (*sessions, error) {
	dir, err := configDir(e)
	if err != nil {
		return nil, err
	}
	return &sessions{dir: dir, http: newHTTPClient(8)}, nil
}

func (s *sessions) file() string { return filepath.Join(s.dir, "session.json") }

// load reads the session, or says how to start one.
func (s *sessions) load() (*session, error) {
	b, err := os.ReadFile(s.file())
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("not signed in: run hq login --endpoint URL --email EMAIL")
	}
	if err != nil {
		return nil, fmt.Errorf("reading the session: %w", err)
	}
	var sess session
	if err := json.Unmarshal(b, &sess); err != nil || sess.Endpoint == "" || sess.RefreshToken == "" {
		return nil, fmt.Errorf("the session file %s is damaged: run hq login again", s.file())
	}
	return &sess, nil
}

func (s *sessions) save(sess *session) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("making hq's config folder: %w", err)
	}
	b, err := json.MarshalIndent(sess, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.file(), b); err != nil { // 0600
		return fmt.Errorf("saving the session: %w", err)
	}
	return nil
}

// lock serializes refreshes between hq processes sharing a config folder:
// with refresh-token rotation, two refreshing at once would leave one of
// them holding a spent token.
func (s *sessions) lock() (unlock func(), err error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "session.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// fresh returns the session with tokens (and, when creds is set, STS
// credentials) valid for at least refreshMargin, refreshing them through
// hqd's refresh route when needed.
func (s *sessions) fresh(ctx context.Context, creds bool) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && !needsRefresh(s.cur, creds) {
		return s.cur, nil
	}
	return s.renew(ctx, func(sess *session) bool { return needsRefresh(sess, creds) }, creds)
}

// refused renews the session after hqd refused its access token although
// our clock says it is valid (revoked, or the clocks disagree).
func (s *sessions) refused(ctx context.Context, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.renew(ctx, func(sess *session) bool { return sess.AccessToken == token }, false)
	return err
}

// renew reloads the session from its file and, when stale says so,
// refreshes and saves it, under the config folder's lock. s.mu is held.
func (s *sessions) renew(ctx context.Context, stale func(*session) bool, creds bool) (*session, error) {
	sess, err := s.load()
	if err != nil {
		return nil, err
	}
	if stale(sess) {
		unlock, err := s.lock()
		if err != nil {
			return nil, fmt.Errorf("locking the session: %w", err)
		}
		defer unlock()
		if sess, err = s.load(); err != nil { // another hq may have refreshed
			return nil, err
		}
		if stale(sess) {
			if err := s.refresh(ctx, sess); err != nil {
				return nil, err
			}
			if err := s.save(sess); err != nil {
				return nil, err
			}
		}
	}
	if creds && sess.Credentials == nil {
		return nil, errors.New("this hqd hands out no S3 credentials (its files are not on S3, or it has no STS role): sync without --direct")
	}
	s.cur = sess
	return sess, nil
}

func needsRefresh(sess *session, creds bool) bool {
	soon := time.Now().Add(refreshMargin)
	if sess.AccessToken == "" || sess.Expires.Before(soon) {
		return true
	}
	return creds && (sess.Credentials == nil || sess.Credentials.Expiration.Before(soon))
}

// refreshAnswer is POST /api/auth/refresh's answer (SPEC §5.2).
type refreshAnswer struct {
	AccessToken  string       `json:"accessToken"`
	IDToken      string       `json:"idToken"`
	RefreshToken string       `json:"refreshToken"`
	ExpiresIn    int          `json:"expiresIn"`
	UserID       string       `json:"userId"`
	Bucket       string       `json:"bucket"`
	Region       string       `json:"region"`
	Prefix       string       `json:"prefix"`
	Credentials  *credentials `json:"credentials"`
}

// refresh renews sess's tokens in place.
func (s *sessions) refresh(ctx context.Context, sess *session) error {
	body, _ := json.Marshal(map[string]string{"refreshToken": sess.RefreshToken})
	req, err := http.NewRequestWithContext(ctx, "POST", sess.Endpoint+"/api/auth/refresh", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("renewing the session at %s: %w", sess.Endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return errSessionEnded
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("renewing the session: %w", readAPIError(resp))
	}
	var ans refreshAnswer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || ans.AccessToken == "" {
		return fmt.Errorf("renewing the session: hqd's answer is not one hq understands (%v)", err)
	}
	if ans.UserID != "" && sess.UserID != "" && ans.UserID != sess.UserID {
		return errors.New("the refreshed session belongs to another user: run hq login again")
	}
	sess.AccessToken, sess.IDToken = ans.AccessToken, ans.IDToken
	sess.Expires = time.Now().Add(time.Duration(ans.ExpiresIn) * time.Second)
	if ans.RefreshToken != "" { // rotation
		sess.RefreshToken = ans.RefreshToken
	}
	sess.UserID, sess.Bucket, sess.Prefix = ans.UserID, ans.Bucket, ans.Prefix
	if ans.Region != "" {
		sess.Region = ans.Region
	}
	sess.Credentials = ans.Credentials
	return nil
}

// apiConfig is GET /api/config (SPEC §3).
type apiConfig struct {
	Region          string `json:"region"`
	UserPoolID      string `json:"userPoolId"`
	ClientID        string `json:"clientId"`
	CognitoEndpoint string `json:"cognitoEndpoint"`
}

func cmdLogin(ctx context.Context, args []string, e env) error {
	fs := newFlags("login", "--endpoint URL --email EMAIL [--password-stdin]", e)
	endpoint := fs.String("endpoint", "", "hqd's base URL, e.g. https://hq.example.com")
	email := fs.String("email", "", "the account's email address")
	passwordStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if *endpoint == "" || *email == "" {
		fs.Usage()
		return errors.New("login needs --endpoint and --email")
	}
	base, err := normalizeEndpoint(*endpoint)
	if err != nil {
		return err
	}
	password, err := readPassword(e, *passwordStdin)
	if err != nil {
		return err
	}
	s, err := newSessions(e)
	if err != nil {
		return err
	}
	var cfg apiConfig
	if err := getJSON(ctx, s.http, base+"/api/config", "", &cfg); err != nil {
		return fmt.Errorf("asking %s how to sign in: %w", base, err)
	}
	if cfg.ClientID == "" {
		return fmt.Errorf("%s/api/config names no app client: is this an hqd?", base)
	}
	cog := cfg.CognitoEndpoint
	if cog == "" {
		cog = "https://cognito-idp." + cfg.Region + ".amazonaws.com/"
	}
	if u, err := url.Parse(cog); err != nil || u.Host == "" {
		return fmt.Errorf("%s names a sign-in endpoint that is not a URL: %q", base, cog)
	} else if err := private(u, "the sign-in endpoint"); err != nil {
		return err
	}
	tok, err := cognitoSignIn(ctx, s.http, cog, cfg.ClientID, *email, password)
	if err != nil {
		return err
	}
	sess := &session{Endpoint: base, Email: *email, ClientID: cfg.ClientID, Region: cfg.Region, CognitoEndpoint: cog,
		AccessToken: tok.AccessToken, IDToken: tok.IDToken, RefreshToken: tok.RefreshToken,
		Expires: time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)}
	// hqd checks the token it will be shown from now on, and names the user.
	var who struct{ UserID, Bucket, Region, Prefix string }
	if err := getJSON(ctx, s.http, base+"/api/auth/credentials", sess.AccessToken, &who); err != nil {
		return fmt.Errorf("hqd refused the new session: %w", err)
	}
	sess.UserID, sess.Bucket, sess.Prefix = who.UserID, who.Bucket, who.Prefix
	if err := s.save(sess); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "signed in to %s as %s\n", base, *email)
	return nil
}

func cmdLogout(ctx context.Context, args []string, e env) error {
	fs := newFlags("logout", "", e)
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	s, err := newSessions(e)
	if err != nil {
		return err
	}
	sess, err := s.fresh(ctx, false)
	if err != nil {
		if _, lerr := s.load(); lerr != nil {
			return lerr // not signed in
		}
		// The session cannot be renewed (ended, or hqd unreachable): forget
		// it here all the same, and say what could not be done.
		_ = os.Remove(s.file())
		return fmt.Errorf("forgot the session here, but could not end it at hqd: %w", err)
	}
	// Under the session's lock, so that another hq renewing it at this
	// moment cannot write it back after it is gone.
	unlock, err := s.lock()
	if err != nil {
		return fmt.Errorf("locking the session: %w", err)
	}
	defer unlock()
	body, _ := json.Marshal(map[string]string{"refreshToken": sess.RefreshToken})
	req, _ := http.NewRequestWithContext(ctx, "POST", sess.Endpoint+"/api/auth/logout", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+sess.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if rerr := os.Remove(s.file()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("removing the session file: %w", rerr)
	}
	if err != nil {
		return fmt.Errorf("forgot the session here, but could not end it at hqd: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("forgot the session here, but hqd did not end it: %w", readAPIError(resp))
	}
	fmt.Fprintln(e.stdout, "signed out")
	return nil
}

// normalizeEndpoint checks an hqd base URL and drops a trailing slash.
func normalizeEndpoint(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--endpoint %q is not a base URL such as https://hq.example.com", s)
	}
	if err := private(u, "--endpoint"); err != nil {
		return "", err
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// private refuses plain http except to this machine: the password and
// tokens would cross the network in clear.
func private(u *url.URL, what string) error {
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("%s %s is plain http to another machine: the password and tokens would travel in clear (use https; http is for this machine only)", what, u.Redacted())
}

// readPassword reads the password from stdin's first line, or asks for it
// on the terminal without echo.
func readPassword(e env, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from stdin: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", errors.New("--password-stdin: standard input held no password")
		}
		return line, nil
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("no terminal to ask for the password: pass it on standard input with --password-stdin")
	}
	fmt.Fprint(e.stderr, "Password: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return string(b), nil
}

// cognitoTokens is Cognito's AuthenticationResult.
type cognitoTokens struct {
	AccessToken  string `json:"AccessToken"`
	IDToken      string `json:"IdToken"`
	RefreshToken string `json:"RefreshToken"`
	ExpiresIn    int    `json:"ExpiresIn"`
}

// cognitoSignIn is Cognito's InitiateAuth with USER_PASSWORD_AUTH, spoken
// as Cognito's JSON protocol (AWS's, cognito-local's and hqd dev's
// provider alike; the call is unsigned, so no AWS SDK is needed).
func cognitoSignIn(ctx context.Context, hc *http.Client, endpoint, clientID, email, password string) (*cognitoTokens, error) {
	body, _ := json.Marshal(map[string]any{
		"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": clientID,
		"AuthParameters": map[string]string{"USERNAME": email, "PASSWORD": password},
	})
	req, err := http.NewRequestWithContext(ctx, "POST", endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("the Cognito endpoint %q: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSCognitoIdentityProviderService.InitiateAuth")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("signing in at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	var out struct {
		Type                 string `json:"__type"`
		Message              string `json:"message"`
		MessageUpper         string `json:"Message"`
		ChallengeName        string
		AuthenticationResult *cognitoTokens
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("signing in: the answer from %s is not Cognito's (HTTP %d)", endpoint, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		kind := out.Type[strings.LastIndex(out.Type, "#")+1:]
		msg := out.Message + out.MessageUpper
		switch kind {
		case "NotAuthorizedException", "UserNotFoundException":
			return nil, fmt.Errorf("sign-in refused: %s", orDefault(msg, "wrong email or password"))
		case "UserNotConfirmedException":
			return nil, errors.New("the account is not confirmed yet: confirm it from the email Cognito sent, then sign in again")
		case "PasswordResetRequiredException":
			return nil, errors.New("the account's password must be reset first (in the app)")
		default:
			return nil, fmt.Errorf("sign-in failed: %s %s (HTTP %d)", kind, msg, resp.StatusCode)
		}
	}
	if out.ChallengeName != "" {
		return nil, fmt.Errorf("sign-in needs a %s step first, which hq cannot do: finish it in the app, then run hq login again", out.ChallengeName)
	}
	if out.AuthenticationResult == nil || out.AuthenticationResult.AccessToken == "" || out.AuthenticationResult.RefreshToken == "" {
		return nil, errors.New("sign-in answered without tokens")
	}
	return out.AuthenticationResult, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
