package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/quantapix/hqd/internal/itest"
)

// TestMain lets the test binary play hq itself when a test needs a real
// process (to kill it mid-sync).
func TestMain(m *testing.M) {
	if os.Getenv("GO_HQ_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	code := m.Run()
	itest.CleanupStandin()
	os.Exit(code)
}

// user is one signed-up account on a running hqd, with hq signed in in
// its own config folder, and a second session playing the PWA's side.
type user struct {
	t        testing.TB
	url      string // hqd
	email    string
	password string
	cfg      string // HQ_CONFIG_DIR
	s3       string // HQ_S3_ENDPOINT, for --direct
	pwa      string // an access token of another session (the app's)
	bin      string // when set, hq runs as this binary, not in-process
	// syncFlags are added to every mustSync (e.g. --direct).
	syncFlags []string
}

// devHQD starts `hqd dev` (the binary make build makes) in a temp dir.
func devHQD(t testing.TB) string {
	return itest.StartHQD(t, itest.BuildCmd(t, "hqd"), nil, "dev", "--data-dir="+t.TempDir())
}

// devUser signs a new account up at hqd dev's identity provider and hq in.
func devUser(t testing.TB, url, email string) *user {
	t.Helper()
	var cfg apiConfig
	if err := getJSON(context.Background(), http.DefaultClient, url+"/api/config", "", &cfg); err != nil {
		t.Fatal(err)
	}
	u := &user{t: t, url: url, email: email, password: "Passw0rd!long", cfg: filepath.Join(t.TempDir(), "hq")}
	if st, out := itest.CognitoCall(t, cfg.CognitoEndpoint, "SignUp", map[string]any{"ClientId": cfg.ClientID, "Username": email, "Password": u.password}); st != 200 {
		t.Fatalf("SignUp = %d %v", st, out)
	}
	u.login()
	u.pwa = u.appToken(cfg)
	return u
}

// login runs hq login with the password on stdin.
func (u *user) login() {
	u.t.Helper()
	if code, out, errOut := u.hqIn(u.password+"\n", "login", "--endpoint", u.url, "--email", u.email, "--password-stdin"); code != 0 {
		u.t.Fatalf("hq login = %d\n%s%s", code, out, errOut)
	}
}

// appToken signs in a second time, as the PWA would, for its own writes.
func (u *user) appToken(cfg apiConfig) string {
	u.t.Helper()
	st, out := itest.CognitoCall(u.t, cfg.CognitoEndpoint, "InitiateAuth", map[string]any{"ClientId": cfg.ClientID, "AuthFlow": "USER_PASSWORD_AUTH",
		"AuthParameters": map[string]string{"USERNAME": u.email, "PASSWORD": u.password}})
	res, _ := out["AuthenticationResult"].(map[string]any)
	tok, _ := res["AccessToken"].(string)
	if st != 200 || tok == "" {
		u.t.Fatalf("InitiateAuth = %d %v", st, out)
	}
	return tok
}

// hq runs one hq command in-process and returns its exit code and output.
func (u *user) hq(args ...string) (int, string, string) { return u.hqIn("", args...) }

func (u *user) hqIn(stdin string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	if u.bin != "" {
		cmd := exec.Command(u.bin, args...)
		cmd.Env = append(os.Environ(), "HQ_CONFIG_DIR="+u.cfg, "HQ_S3_ENDPOINT="+u.s3)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
		err := cmd.Run()
		if _, exited := err.(*exec.ExitError); err != nil && !exited {
			u.t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
	}
	code := run(context.Background(), args, env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: u.getenv})
	return code, out.String(), errOut.String()
}

func (u *user) getenv(k string) string {
	switch k {
	case "HQ_CONFIG_DIR":
		return u.cfg
	case "HQ_S3_ENDPOINT":
		return u.s3
	}
	return ""
}

// mustSync runs hq sync DIR (and flags) and wants exit code want.
func (u *user) mustSync(want int, dir string, flags ...string) string {
	u.t.Helper()
	flags = append(flags, u.syncFlags...)
	code, out, errOut := u.hq(append([]string{"sync", dir}, flags...)...)
	if code != want {
		u.t.Fatalf("hq sync %s %v = %d, want %d\nstdout:\n%s\nstderr:\n%s", dir, flags, code, want, out, errOut)
	}
	return out + errOut
}

// The app's side of the API: the JSON envelope the PWA sends.

// appPut writes path as the app does; ifMatch "" writes unconditionally.
// It returns the new ETag.
func (u *user) appPut(path, content, ifMatch string) string {
	u.t.Helper()
	body, _ := json.Marshal(map[string]string{"content": base64.StdEncoding.EncodeToString([]byte(content))})
	st, b, hdr := u.app("PUT", "/api/files/"+path, bytes.NewReader(body), "If-Match", ifMatch)
	if st != 200 {
		u.t.Fatalf("app PUT %s = %d %s", path, st, b)
	}
	return hdr.Get("ETag")
}

// appGet reads path's bytes and ETag; ok is false when there is none.
func (u *user) appGet(path string) (content, etag string, ok bool) {
	u.t.Helper()
	st, b, hdr := u.app("GET", "/api/files/"+path+"?raw=1", nil)
	switch st {
	case 200:
		return string(b), hdr.Get("ETag"), true
	case 404:
		return "", "", false
	}
	u.t.Fatalf("app GET %s = %d %s", path, st, b)
	return "", "", false
}

func (u *user) appDelete(path string) {
	u.t.Helper()
	if st, b, _ := u.app("DELETE", "/api/files/"+path, nil); st != 204 {
		u.t.Fatalf("app DELETE %s = %d %s", path, st, b)
	}
}

// appList is every remote path with its ETag.
func (u *user) appList() map[string]string {
	u.t.Helper()
	out := map[string]string{}
	for token := ""; ; {
		q := "/api/files?limit=100"
		if token != "" {
			q += "&token=" + token
		}
		st, b, _ := u.app("GET", q, nil)
		if st != 200 {
			u.t.Fatalf("app list = %d %s", st, b)
		}
		var l listing
		if err := json.Unmarshal(b, &l); err != nil {
			u.t.Fatal(err)
		}
		for _, f := range l.Files {
			out[f.Path] = f.ETag
		}
		if token = l.NextToken; token == "" {
			return out
		}
	}
}

func (u *user) app(method, path string, body io.Reader, hdr ...string) (int, []byte, http.Header) {
	u.t.Helper()
	req, err := http.NewRequest(method, u.url+path, body)
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+u.pwa)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] != "" {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// Local folder helpers.

func write(t testing.TB, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t testing.TB, dir, rel string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if os.IsNotExist(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// localFiles lists DIR's files (without .hq/) with their contents.
func localFiles(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == stateDir && d.IsDir() {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// session is hq's saved session.
func (u *user) session() *session {
	u.t.Helper()
	sess, err := (&sessions{dir: u.cfg}).load()
	if err != nil {
		u.t.Fatal(err)
	}
	return sess
}
