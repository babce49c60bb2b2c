package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

type devTokens struct {
	AccessToken, IdToken, RefreshToken string
}

func devSignIn(t testing.TB, h *hqd, email, password string) devTokens {
	t.Helper()
	var cfg struct{ ClientID, CognitoEndpoint string }
	do(t, "GET", h.URL+"/api/config", "", nil).decode(t, &cfg)
	if a := cognito(t, cfg.CognitoEndpoint, "SignUp", map[string]any{"ClientId": cfg.ClientID, "Username": email, "Password": password}); a.status != 200 {
		t.Fatalf("SignUp = %d %s", a.status, a.body)
	}
	return devSignInAgain(t, h, email, password)
}

// devSignInAgain signs an existing account in: another session of it.
func devSignInAgain(t testing.TB, h *hqd, email, password string) devTokens {
	t.Helper()
	var cfg struct{ ClientID, CognitoEndpoint string }
	do(t, "GET", h.URL+"/api/config", "", nil).decode(t, &cfg)
	a := cognito(t, cfg.CognitoEndpoint, "InitiateAuth", map[string]any{"ClientId": cfg.ClientID, "AuthFlow": "USER_PASSWORD_AUTH",
		"AuthParameters": map[string]string{"USERNAME": email, "PASSWORD": password}})
	var out struct{ AuthenticationResult devTokens }
	a.decode(t, &out)
	if a.status != 200 || out.AuthenticationResult.AccessToken == "" {
		t.Fatalf("InitiateAuth = %d %s", a.status, a.body)
	}
	return out.AuthenticationResult
}

// TestDev follows the README: hqd dev, sign up, sign in, keep a file.
func TestDev(t *testing.T) {
	dir := t.TempDir()
	// A fixed port: the dev issuer names it, and the restart below keeps it.
	addr := fmt.Sprintf("--addr=127.0.0.1:%d", itest.FreePort(t))
	h := startHQD(t, nil, "dev", addr, "--metrics-addr=127.0.0.1:0", "--data-dir="+dir)
	h.waitReady()
	if !strings.Contains(h.Stderr(), h.URL) || !strings.Contains(h.Stderr(), "SignUp") {
		t.Errorf("hqd dev does not print its URL and how to sign in:\n%s", h.Stderr())
	}

	var cfg map[string]string
	do(t, "GET", h.URL+"/api/config", "", nil).decode(t, &cfg)
	if cfg["userPoolId"] == "" || cfg["clientId"] == "" || cfg["cognitoEndpoint"] != h.URL+"/dev/cognito/" || cfg["region"] == "" {
		t.Errorf("/api/config = %v", cfg)
	}

	tok := devSignIn(t, h, "Me@Example.com", "Passw0rd!")
	for _, bearer := range []string{tok.AccessToken, tok.IdToken} {
		if a := do(t, "GET", h.URL+"/api/auth/credentials", bearer, nil); a.status != 200 {
			t.Errorf("credentials with a dev token = %d %s", a.status, a.body)
		}
	}
	var cred map[string]string
	do(t, "GET", h.URL+"/api/auth/credentials", tok.AccessToken, nil).decode(t, &cred)
	if !strings.HasPrefix(cred["prefix"], "users/") || cred["prefix"] != "users/"+cred["userId"]+"/hq/" {
		t.Errorf("credentials = %v", cred)
	}

	// The README's curl lines, in Go.
	a := do(t, "PUT", h.URL+"/api/files/notes/hello.md?raw=1", tok.AccessToken, strings.NewReader("hello"), "Content-Type", "application/x-www-form-urlencoded")
	if a.status != 200 {
		t.Fatalf("PUT = %d %s", a.status, a.body)
	}
	a = do(t, "GET", h.URL+"/api/files?delimiter=/", tok.AccessToken, nil)
	if a.status != 200 || !strings.Contains(string(a.body), `"folders":["notes/"]`) {
		t.Errorf("list = %d %s", a.status, a.body)
	}
	a = do(t, "GET", h.URL+"/api/files/notes/hello.md", tok.AccessToken, nil)
	var env struct{ Content, ContentType string }
	a.decode(t, &env)
	if env.Content != base64.StdEncoding.EncodeToString([]byte("hello")) || !strings.HasPrefix(env.ContentType, "text/markdown") {
		t.Errorf("GET = %s", a.body)
	}
	// The file is an ordinary file a person can open.
	b, err := os.ReadFile(filepath.Join(dir, "files", cred["prefix"], "notes", "hello.md"))
	if err != nil || string(b) != "hello" {
		t.Errorf("file on disk: %q %v", b, err)
	}
	if a := do(t, "DELETE", h.URL+"/api/files/notes/hello.md", tok.AccessToken, nil); a.status != 204 {
		t.Errorf("DELETE = %d", a.status)
	}
	if a := do(t, "GET", h.URL+"/api/files/notes/hello.md", tok.AccessToken, nil); a.status != 404 {
		t.Errorf("GET after DELETE = %d", a.status)
	}

	// Metrics live on their own listener only.
	if a := do(t, "GET", h.URL+"/metrics", "", nil); a.status != 404 {
		t.Errorf("public /metrics = %d, want 404", a.status)
	}
	a = do(t, "GET", h.MetricsURL+"/metrics", "", nil)
	for _, m := range []string{"hqd_http_requests_total", "hqd_http_request_duration_seconds", "hqd_store_operations_total", "hqd_auth_failures_total"} {
		if !strings.Contains(string(a.body), m) && m != "hqd_auth_failures_total" {
			t.Errorf("metrics lack %s", m)
		}
	}
	do(t, "GET", h.URL+"/api/files", "not-a-token", nil)
	if a := do(t, "GET", h.MetricsURL+"/metrics", "", nil); !strings.Contains(string(a.body), `hqd_auth_failures_total{reason="malformed"} 1`) {
		t.Errorf("auth failure not counted:\n%s", grep(string(a.body), "hqd_auth"))
	}

	// Tokens stay valid across a restart: the key is kept in the data dir.
	if code, err := h.stop(10 * time.Second); err != nil || code != 0 {
		t.Fatalf("SIGTERM: exit %d, %v", code, err)
	}
	h2 := startHQD(t, nil, "dev", addr, "--metrics-addr=", "--data-dir="+dir)
	h2.waitReady()
	if a := do(t, "GET", h2.URL+"/api/files", tok.AccessToken, nil); a.status != 200 {
		t.Errorf("after restart the token is refused: %d %s", a.status, a.body)
	}
	if a := cognito(t, h2.URL+"/dev/cognito/", "InitiateAuth", map[string]any{"ClientId": cfg["clientId"], "AuthFlow": "REFRESH_TOKEN_AUTH",
		"AuthParameters": map[string]string{"REFRESH_TOKEN": tok.RefreshToken}}); a.status != 200 || !strings.Contains(string(a.body), "AccessToken") {
		t.Errorf("refresh after restart = %d %s", a.status, a.body)
	}
	for _, line := range strings.Split(h.Stdout()+h2.Stdout(), "\n") {
		if strings.Contains(line, tok.AccessToken[:40]) || strings.Contains(line, tok.RefreshToken) || strings.Contains(line, "Passw0rd") || strings.Contains(line, "hello") {
			t.Errorf("a log line carries a secret or file contents: %s", line)
		}
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestDevIdentityProviderErrors(t *testing.T) {
	h := startHQD(t, nil, "dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+t.TempDir())
	ep := h.URL + "/dev/cognito/"
	var cfg struct{ ClientID string }
	do(t, "GET", h.URL+"/api/config", "", nil).decode(t, &cfg)
	signUp := func(user, pw string) call {
		return cognito(t, ep, "SignUp", map[string]any{"ClientId": cfg.ClientID, "Username": user, "Password": pw})
	}
	for _, tc := range []struct {
		name string
		got  call
		typ  string
	}{
		{"weak password", signUp("a@example.com", "short"), "InvalidPasswordException"},
		{"no symbol", signUp("a@example.com", "Passw0rdxx"), "InvalidPasswordException"},
		{"not an email", signUp("alice", "Passw0rd!"), "InvalidParameterException"},
		{"unknown client", cognito(t, ep, "SignUp", map[string]any{"ClientId": "nope", "Username": "b@example.com", "Password": "Passw0rd!"}), "ResourceNotFoundException"},
		{"unknown action", cognito(t, ep, "AdminDeleteUser", map[string]any{}), "UnknownOperationException"},
		{"wrong password", cognito(t, ep, "InitiateAuth", map[string]any{"ClientId": cfg.ClientID, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": map[string]string{"USERNAME": "nobody@example.com", "PASSWORD": "x"}}), "NotAuthorizedException"},
		{"bad refresh token", cognito(t, ep, "InitiateAuth", map[string]any{"ClientId": cfg.ClientID, "AuthFlow": "REFRESH_TOKEN_AUTH", "AuthParameters": map[string]string{"REFRESH_TOKEN": "nope"}}), "NotAuthorizedException"},
		{"unsupported flow", cognito(t, ep, "InitiateAuth", map[string]any{"ClientId": cfg.ClientID, "AuthFlow": "USER_SRP_AUTH"}), "InvalidParameterException"},
	} {
		var e struct {
			Type string `json:"__type"`
		}
		_ = json.Unmarshal(tc.got.body, &e)
		if tc.got.status != 400 || e.Type != tc.typ {
			t.Errorf("%s = %d %s, want 400 %s", tc.name, tc.got.status, tc.got.body, tc.typ)
		}
	}
	if a := signUp("dup@example.com", "Passw0rd!"); a.status != 200 || !strings.Contains(string(a.body), `"UserConfirmed":true`) {
		t.Fatalf("SignUp = %d %s", a.status, a.body)
	}
	if a := signUp("DUP@example.com", "Passw0rd!"); a.status != 400 || !strings.Contains(string(a.body), "UsernameExistsException") {
		t.Errorf("second SignUp of one email = %d %s", a.status, a.body)
	}
	if a := cognito(t, ep, "ConfirmSignUp", map[string]any{"ClientId": cfg.ClientID, "Username": "dup@example.com", "ConfirmationCode": "123456"}); a.status != 200 {
		t.Errorf("ConfirmSignUp = %d %s", a.status, a.body)
	}
	a := cognito(t, ep, "InitiateAuth", map[string]any{"ClientId": cfg.ClientID, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": map[string]string{"USERNAME": "dup@example.com", "PASSWORD": "Passw0rd!"}})
	var out struct{ AuthenticationResult struct{ AccessToken string } }
	a.decode(t, &out)
	a = cognito(t, ep, "GetUser", map[string]any{"AccessToken": out.AuthenticationResult.AccessToken})
	if a.status != 200 || !strings.Contains(string(a.body), `"dup@example.com"`) {
		t.Errorf("GetUser = %d %s", a.status, a.body)
	}
	if a := do(t, "GET", h.URL+"/dev/cognito/wrong-pool/.well-known/jwks.json", "", nil); a.status != 404 {
		t.Errorf("JWKS of another pool = %d", a.status)
	}
	if a := do(t, "GET", h.URL+"/dev/cognito/"+"us-east-1_hqddev/.well-known/jwks.json", "", nil); a.status != 200 || !strings.Contains(string(a.body), `"kty":"RSA"`) || strings.Contains(string(a.body), `"d":`) {
		t.Errorf("JWKS = %d %s", a.status, a.body)
	}
	_ = http.StatusOK
}

// TestDevRefreshAndLogout: hqd dev refreshes through its own provider (no
// credentials with the dir store), logout ends the whole sign-in (every
// token with its origin_jti), and that survives a restart.
func TestDevRefreshAndLogout(t *testing.T) {
	dir := t.TempDir()
	addr := fmt.Sprintf("--addr=127.0.0.1:%d", itest.FreePort(t))
	h := startHQD(t, nil, "dev", addr, "--metrics-addr=", "--data-dir="+dir)
	h.waitReady()
	tok := devSignIn(t, h, "rita@example.com", "Passw0rd!")
	a, r := refresh(t, h, tok.RefreshToken, "")
	if a.status != 200 || r.AccessToken == "" || r.Credentials != nil || r.RefreshToken != "" || r.Bucket != "" || r.ExpiresIn != 3600 {
		t.Fatalf("dev refresh = %d %s", a.status, a.body)
	}
	if strings.Contains(string(a.body), `"credentials"`) {
		t.Errorf("the dir store's answer names credentials: %s", a.body)
	}
	other := devSignIn(t, h, "sam@example.com", "Passw0rd!")

	b, _ := json.Marshal(map[string]string{"refreshToken": tok.RefreshToken})
	if a := do(t, "POST", h.URL+"/api/auth/logout", tok.AccessToken, bytes.NewReader(b)); a.status != 204 {
		t.Fatalf("logout = %d %s", a.status, a.body)
	}
	for name, bearer := range map[string]string{"presented token": tok.AccessToken, "its id token": tok.IdToken, "refreshed sibling": r.AccessToken} {
		if a := do(t, "GET", h.URL+"/api/files", bearer, nil); a.status != 401 {
			t.Errorf("%s after logout = %d, want 401", name, a.status)
		}
	}
	if a, _ := refresh(t, h, tok.RefreshToken, ""); a.status != 401 {
		t.Errorf("refresh after logout = %d, want 401", a.status)
	}
	if a := do(t, "GET", h.URL+"/api/files", other.AccessToken, nil); a.status != 200 {
		t.Errorf("another user's session after logout = %d", a.status)
	}
	// Logout without a body still ends the sign-in's tokens.
	if a := do(t, "POST", h.URL+"/api/auth/logout", other.AccessToken, nil); a.status != 204 {
		t.Errorf("logout without body = %d %s", a.status, a.body)
	}
	if _, err := h.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	h2 := startHQD(t, nil, "dev", addr, "--metrics-addr=", "--data-dir="+dir)
	h2.waitReady()
	if a := do(t, "GET", h2.URL+"/api/files", r.AccessToken, nil); a.status != 401 {
		t.Errorf("a logged-out token after restart = %d, want 401", a.status)
	}
}

func TestDevRefreshRotation(t *testing.T) {
	h := startHQD(t, []string{"HQD_COGNITO_REFRESH_ROTATION=true"}, "dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+t.TempDir())
	h.waitReady()
	tok := devSignIn(t, h, "rota@example.com", "Passw0rd!")
	a, r := refresh(t, h, tok.RefreshToken, "")
	if a.status != 200 || r.RefreshToken == "" || r.RefreshToken == tok.RefreshToken {
		t.Fatalf("rotating refresh = %d %s", a.status, a.body)
	}
	if a, _ := refresh(t, h, tok.RefreshToken, ""); a.status != 401 {
		t.Errorf("the rotated-out refresh token = %d, want 401", a.status)
	}
	if a, r2 := refresh(t, h, r.RefreshToken, ""); a.status != 200 || r2.RefreshToken == r.RefreshToken {
		t.Errorf("the new refresh token = %d %s", a.status, a.body)
	}
}

// TestDevOnMinIO: hqd dev pointed at MinIO keeps files there and hands out
// STS credentials from it.
func TestDevOnMinIO(t *testing.T) {
	m := itest.StartMinIO(t)
	bucket := m.Bucket(t)
	h := startHQD(t, []string{"HQD_STORAGE=s3", "HQD_BUCKET=" + bucket, "HQD_S3_ENDPOINT=" + m.Endpoint, "HQD_S3_PATH_STYLE=1",
		"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey},
		"dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+t.TempDir())
	h.waitReady()
	tok := devSignIn(t, h, "mina@example.com", "Passw0rd!")
	a, r := refresh(t, h, tok.RefreshToken, "")
	if a.status != 200 || r.Credentials == nil || r.Bucket != bucket {
		t.Fatalf("dev on MinIO refresh = %d %s", a.status, a.body)
	}
	if a := do(t, "PUT", h.URL+"/api/files/x.md?raw=1", tok.AccessToken, strings.NewReader("x")); a.status != 200 {
		t.Errorf("PUT = %d", a.status)
	}
}
