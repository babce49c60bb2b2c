package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoginAndFiles follows a person through sign-in, the file commands
// and sign-out against hqd dev, over the wire.
func TestLoginAndFiles(t *testing.T) {
	url := devHQD(t)
	u := devUser(t, url, "files@example.com")

	// The session file is the user's secret.
	for p, want := range map[string]os.FileMode{u.cfg: 0o700, filepath.Join(u.cfg, "session.json"): 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v, want mode %v", p, st, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(u.cfg, "session.json")); strings.Contains(string(b), u.password) {
		t.Error("the session file holds the password")
	}

	// Wrong password, and no terminal to ask on: clear errors, exit 1.
	other := &user{t: t, url: url, email: u.email, cfg: filepath.Join(t.TempDir(), "hq")}
	if code, _, errOut := other.hqIn("wrong-password\n", "login", "--endpoint", url, "--email", u.email, "--password-stdin"); code != 1 || !strings.Contains(errOut, "refused") {
		t.Errorf("a wrong password: exit %d, %q", code, errOut)
	}
	if code, _, errOut := other.hq("login", "--endpoint", url, "--email", u.email); code != 1 || !strings.Contains(errOut, "--password-stdin") {
		t.Errorf("no terminal: exit %d, %q", code, errOut)
	}
	if code, _, errOut := other.hq("ls"); code != 1 || !strings.Contains(errOut, "hq login") {
		t.Errorf("not signed in: exit %d, %q", code, errOut)
	}
	if code, _, errOut := other.hqIn("x\n", "login", "--endpoint", "ftp://x", "--email", u.email, "--password-stdin"); code != 1 || !strings.Contains(errOut, "base URL") {
		t.Errorf("a bad endpoint: exit %d, %q", code, errOut)
	}

	// put, ls, get, get -o.
	src := filepath.Join(t.TempDir(), "notes.md")
	if err := os.WriteFile(src, []byte("# notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := u.hq("put", src, "work/notes.md", "--json")
	var put remoteFile
	if code != 0 || json.Unmarshal([]byte(out), &put) != nil || put.ETag == "" || put.Size != 8 {
		t.Fatalf("put = %d %q %q", code, out, errOut)
	}
	if code, out, _ := u.hq("ls"); code != 0 || !strings.Contains(out, "work/") {
		t.Errorf("ls = %d %q", code, out)
	}
	if code, out, _ := u.hq("ls", "work/", "-r"); code != 0 || !strings.Contains(out, "work/notes.md") || !strings.Contains(out, "8") {
		t.Errorf("ls work/ -r = %d %q", code, out)
	}
	if code, out, _ := u.hq("get", "work/notes.md"); code != 0 || out != "# notes\n" {
		t.Errorf("get = %d %q", code, out)
	}
	dst := filepath.Join(t.TempDir(), "copy.md")
	if code, _, errOut := u.hq("get", "work/notes.md", "-o", dst); code != 0 {
		t.Errorf("get -o = %d %q", code, errOut)
	} else if b, _ := os.ReadFile(dst); string(b) != "# notes\n" {
		t.Errorf("get -o wrote %q", b)
	}
	if code, _, errOut := u.hq("get", "work/missing.md"); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("get of a missing file = %d %q", code, errOut)
	}
	if code, _, errOut := u.hq("put", src, "../escape.md"); code != 1 || !strings.Contains(errOut, ". or ..") {
		t.Errorf("put to a bad path = %d %q", code, errOut)
	}

	// Conditional writes: a stale ETag is a conflict (exit 3) and changes nothing.
	newer := u.appPut("work/notes.md", "# the app's notes\n", put.ETag)
	if code, _, errOut := u.hq("put", src, "work/notes.md", "--if-match", put.ETag); code != 3 || !strings.Contains(errOut, "nothing was changed") {
		t.Errorf("put --if-match stale = %d %q", code, errOut)
	}
	if code, _, _ := u.hq("rm", "work/notes.md", "--if-match", strings.Trim(put.ETag, `"`)); code != 3 {
		t.Errorf("rm --if-match stale = %d", code)
	}
	if got, _, _ := u.appGet("work/notes.md"); got != "# the app's notes\n" {
		t.Errorf("after refused writes the file holds %q", got)
	}
	if code, _, errOut := u.hq("put", src, "work/notes.md", "--if-match", newer); code != 0 {
		t.Errorf("put --if-match current = %d %q", code, errOut)
	}
	if code, _, errOut := u.hq("rm", "work/notes.md"); code != 0 {
		t.Errorf("rm = %d %q", code, errOut)
	}
	if _, _, ok := u.appGet("work/notes.md"); ok {
		t.Error("rm left the file")
	}

	// A token near expiry is renewed through /api/auth/refresh first.
	var sess session
	b, _ := os.ReadFile(filepath.Join(u.cfg, "session.json"))
	_ = json.Unmarshal(b, &sess)
	oldToken := sess.AccessToken
	sess.Expires = time.Now().Add(time.Minute)
	b, _ = json.Marshal(sess)
	_ = os.WriteFile(filepath.Join(u.cfg, "session.json"), b, 0o600)
	if code, _, errOut := u.hq("ls"); code != 0 {
		t.Fatalf("ls with a token near expiry = %d %q", code, errOut)
	}
	b, _ = os.ReadFile(filepath.Join(u.cfg, "session.json"))
	_ = json.Unmarshal(b, &sess)
	if sess.AccessToken == oldToken || time.Until(sess.Expires) < 30*time.Minute {
		t.Errorf("the token was not renewed: expires %v", sess.Expires)
	}

	// Sign-out ends the session at hqd: its token is refused afterwards.
	if code, out, errOut := u.hq("logout"); code != 0 || !strings.Contains(out, "signed out") {
		t.Fatalf("logout = %d %q %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(u.cfg, "session.json")); !os.IsNotExist(err) {
		t.Error("logout left the session file")
	}
	u.pwa = sess.AccessToken
	if st, _, _ := u.app("GET", "/api/files", nil); st != 401 {
		t.Errorf("the signed-out token still works: %d", st)
	}
	if code, _, errOut := u.hq("ls"); code != 1 || !strings.Contains(errOut, "hq login") {
		t.Errorf("ls after logout = %d %q", code, errOut)
	}
}
