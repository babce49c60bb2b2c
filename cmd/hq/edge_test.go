package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestSyncLeavesAlone: what the sync cannot mirror it leaves alone on both
// sides and says so (exit 1) — links, a folder where the other side has a
// file, files under an ignored folder — and never writes through a link.
func TestSyncLeavesAlone(t *testing.T) {
	u := devUser(t, devHQD(t), "alone@example.com")
	dir, outside := t.TempDir(), t.TempDir()

	// A link to a folder outside, where the remote side has files.
	u.appPut("notes/a.md", "a\n", "")
	if err := os.Symlink(outside, filepath.Join(dir, "notes")); err != nil {
		t.Fatal(err)
	}
	// A link to a file holding the remote file's very bytes.
	write(t, outside, "s.md", "same\n")
	u.appPut("s.md", "same\n", "")
	if err := os.Symlink(filepath.Join(outside, "s.md"), filepath.Join(dir, "s.md")); err != nil {
		t.Fatal(err)
	}
	// A folder here, a file there.
	write(t, dir, "doc/x.md", "x\n")
	u.appPut("doc", "a file\n", "")
	// A file re-included under an ignored folder (gitignore cannot do that).
	write(t, dir, ".hqignore", "logs/\n!logs/keep.txt\n")
	u.appPut("logs/keep.txt", "kept\n", "")

	for range 2 {
		out := u.mustSync(1, dir)
		for _, want := range []string{"notes/a.md", "doc"} {
			if !strings.Contains(out, want) {
				t.Errorf("not reported: %s\n%s", want, out)
			}
		}
	}
	for p, want := range map[string]string{"notes/a.md": "a\n", "s.md": "same\n", "doc": "a file\n", "logs/keep.txt": "kept\n"} {
		if got, _, ok := u.appGet(p); !ok || got != want {
			t.Errorf("remote %s: %q %v, want it kept", p, got, ok)
		}
	}
	if got := localFiles(t, outside); len(got) != 1 {
		t.Errorf("the sync wrote through a link: %v", keys(got))
	}
	for name := range localFiles(t, dir) {
		if strings.Contains(name, ".conflict-") {
			t.Errorf("a conflict copy for something that is no conflict: %s", name)
		}
	}
	if _, ok := read(t, dir, "logs/keep.txt"); ok {
		t.Error("a file under an ignored folder came down")
	}
}

// TestSyncAdoptsCopy: a conflict copy written by a sync killed before it
// recorded the copy is recognized on the next run, not uploaded.
func TestSyncAdoptsCopy(t *testing.T) {
	u := devUser(t, devHQD(t), "adopt@example.com")
	dir := t.TempDir()
	write(t, dir, "x.md", "v1\n")
	u.mustSync(0, dir)
	write(t, dir, "x.md", "mine\n")
	_, etag, _ := u.appGet("x.md")
	theirs := u.appPut("x.md", "theirs\n", etag)
	u.mustSync(3, dir)
	// The state as a kill before its save would have left it.
	var st state
	b, _ := os.ReadFile(statePath(dir))
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	st.Files["x.md"].Conflict = ""
	st.Files["x.md"].ETag = etag
	b, _ = json.Marshal(st)
	if err := os.WriteFile(statePath(dir), b, 0o600); err != nil {
		t.Fatal(err)
	}
	u.mustSync(3, dir)
	if _, _, ok := u.appGet("x.md.conflict-" + shortETag(theirs)); ok {
		t.Error("the conflict copy was uploaded")
	}
	if got, _, _ := u.appGet("x.md"); got != "theirs\n" {
		t.Errorf("remote x.md is now %q", got)
	}
}

// TestSyncModes: a downloaded update keeps the local file's mode.
func TestSyncModes(t *testing.T) {
	u := devUser(t, devHQD(t), "modes@example.com")
	dir := t.TempDir()
	write(t, dir, "run.sh", "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(dir, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	u.mustSync(0, dir)
	_, etag, _ := u.appGet("run.sh")
	u.appPut("run.sh", "#!/bin/sh\necho new\n", etag)
	u.appPut("new.md", "new\n", "")
	u.mustSync(0, dir)
	for name, want := range map[string]os.FileMode{"run.sh": 0o755, "new.md": 0o644} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want mode %v", name, st.Mode(), err, want)
		}
	}
}

// TestSyncRemoteNames: keys S3 can hold but a file cannot are never used
// as local paths (--direct lists the bucket itself).
func TestSyncRemoteNames(t *testing.T) {
	st := startServe(t)
	u := st.user(t, "names@example.com")
	u.syncFlags = []string{"--direct"}
	prefix := u.session().Prefix
	for _, key := range []string{prefix + "a\tb.md", prefix + "folder/", prefix + "ok.md"} {
		if _, err := st.m.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &st.bucket, Key: aws.String(key), Body: strings.NewReader("x")}); err != nil {
			t.Fatalf("%q: %v", key, err)
		}
	}
	dir := t.TempDir()
	out := u.mustSync(1, dir)
	if !strings.Contains(out, "cannot be a file here") {
		t.Errorf("the bad name is not reported:\n%s", out)
	}
	if got := keys(localFiles(t, dir)); len(got) != 1 || got[0] != "ok.md" {
		t.Errorf("local files: %v, want only ok.md", got)
	}
}

// TestLoginRefusals: no password over plain http to another machine, and
// no redirect followed with one.
func TestLoginRefusals(t *testing.T) {
	u := &user{t: t, email: "me@example.com", cfg: filepath.Join(t.TempDir(), "hq")}
	if code, _, errOut := u.hqIn("pw\n", "login", "--endpoint", "http://hq.example.com", "--email", u.email, "--password-stdin"); code != 1 || !strings.Contains(errOut, "in clear") {
		t.Errorf("plain http: exit %d, %q", code, errOut)
	}
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	if code, _, errOut := u.hqIn("pw\n", "login", "--endpoint", redirect.URL, "--email", u.email, "--password-stdin"); code != 1 {
		t.Errorf("a redirecting endpoint: exit %d, %q", code, errOut)
	}
	if elsewhere.Load() != 0 {
		t.Error("hq followed a redirect to another server")
	}
}

// TestSyncSessionEnds: a session ended mid-sync (signed out elsewhere)
// stops the sync with one clear message, not one error per file.
func TestSyncSessionEnds(t *testing.T) {
	u := devUser(t, devHQD(t), "ends@example.com")
	dir := t.TempDir()
	for i := range 50 {
		write(t, dir, fmt.Sprintf("f%02d.md", i), "x\n")
	}
	testHookPlanned = func() {
		sess := u.session()
		body := strings.NewReader(fmt.Sprintf(`{"refreshToken":%q}`, sess.RefreshToken))
		req, _ := http.NewRequest("POST", u.url+"/api/auth/logout", body)
		req.Header.Set("Authorization", "Bearer "+sess.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
			t.Errorf("logout elsewhere: %v %v", resp, err)
		}
	}
	defer func() { testHookPlanned = nil }()
	code, out, errOut := u.hq("sync", dir)
	if code != 1 || strings.Count(out+errOut, "run hq login again") != 1 {
		t.Errorf("exit %d, want 1 and one message:\n%s%s", code, out, errOut)
	}
}

// TestSyncFoldedNames: on a disk that takes A.md and a.md for one name
// (macOS's, by default), paths that differ only so are left alone on both
// sides: mirroring one would end with the other taken for deleted.
func TestSyncFoldedNames(t *testing.T) {
	u := devUser(t, devHQD(t), "fold@example.com")
	testFoldNames = true
	defer func() { testFoldNames = false }()
	dir := t.TempDir()
	u.appPut("Notes.md", "N\n", "")
	u.appPut("notes.md", "n\n", "")
	u.appPut("Caf\u00e9.md", "nfc\n", "")
	write(t, dir, "a.md", "mine\n")
	u.appPut("A.md", "theirs\n", "")
	write(t, dir, "cafe\u0301.md", "nfd\n")
	write(t, dir, "other.md", "o\n")
	for range 2 {
		if out := u.mustSync(1, dir); !strings.Contains(out, "differ only in case") {
			t.Errorf("not reported:\n%s", out)
		}
	}
	remote := u.appList()
	if fmt.Sprint(keys(remote)) != fmt.Sprint([]string{"A.md", "Caf\u00e9.md", "Notes.md", "notes.md", "other.md"}) {
		t.Errorf("remote now: %v", keys(remote))
	}
	if fmt.Sprint(keys(localFiles(t, dir))) != fmt.Sprint([]string{"a.md", "cafe\u0301.md", "other.md"}) {
		t.Errorf("local now: %v", keys(localFiles(t, dir)))
	}
}

// TestSafeParents: the backstop under every write refuses a link on the
// way before it makes any folder through it.
func TestSafeParents(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "notes")); err != nil {
		t.Fatal(err)
	}
	s := &syncer{dir: dir}
	if err := s.safeParents(filepath.Join(dir, "notes", "sub", "a.md")); err == nil || !strings.Contains(err.Error(), "not followed") {
		t.Errorf("a link on the way: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "sub")); !os.IsNotExist(err) {
		t.Errorf("a folder was made through the link: %v", err)
	}
	if err := s.safeParents(filepath.Join(dir, "new", "deeper", "a.md")); err != nil {
		t.Errorf("plain new folders: %v", err)
	}
}
