package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyncCases walks through every case of the two-way sync, the other
// side played by the app's API calls: against hqd dev (the dir store),
// against hqd serve on MinIO and cognito-local, and the same with --direct
// (the bytes straight to MinIO under the STS session policy).
func TestSyncCases(t *testing.T) {
	t.Run("dev", func(t *testing.T) { syncCases(t, devUser(t, devHQD(t), "sync@example.com")) })
	st := startServe(t)
	t.Run("serve", func(t *testing.T) { syncCases(t, st.user(t, "sync@example.com")) })
	t.Run("serve-direct", func(t *testing.T) {
		u := st.user(t, "direct@example.com")
		u.syncFlags = []string{"--direct"}
		syncCases(t, u)
	})
}

func syncCases(t *testing.T, u *user) {
	dir := t.TempDir()

	// First sync: each side's new files reach the other.
	write(t, dir, "CLAUDE.md", "# HQ\n")
	write(t, dir, "workers/registry.yaml", "workers: []\n")
	write(t, dir, "empty.md", "")
	write(t, dir, "odd names/a b%20ü#?.md", "odd\n")
	u.appPut("knowledge/index.md", "# index\n", "")
	u.mustSync(0, dir)
	if got, _, ok := u.appGet("odd%20names/a%20b%2520%C3%BC%23%3F.md"); !ok || got != "odd\n" {
		t.Errorf("a name with spaces, %%, # and ?: remote holds %q (%v): %v", got, ok, u.appList())
	}
	if _, _, ok := u.appGet("empty.md"); !ok {
		t.Error("an empty file was not uploaded")
	}
	if got, _, _ := u.appGet("workers/registry.yaml"); got != "workers: []\n" {
		t.Errorf("upload: remote holds %q", got)
	}
	if got, _ := read(t, dir, "knowledge/index.md"); got != "# index\n" {
		t.Errorf("download: local holds %q", got)
	}
	if st, err := os.Stat(statePath(dir)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("state file: %v %v", st, err)
	}

	// Nothing changed: nothing done.
	out := u.mustSync(0, dir, "--json")
	if sum := summary(t, out); sum.Uploaded+sum.Downloaded+sum.DeletedRemote+sum.DeletedLocal != 0 || !sum.InSync {
		t.Errorf("a no-change sync did something: %s", out)
	}

	// One-sided changes propagate, with the version they were based on.
	write(t, dir, "CLAUDE.md", "# HQ, edited here\n")
	_, etag, _ := u.appGet("knowledge/index.md")
	u.appPut("knowledge/index.md", "# index, edited in the app\n", etag)
	u.mustSync(0, dir)
	if got, _, _ := u.appGet("CLAUDE.md"); got != "# HQ, edited here\n" {
		t.Errorf("local edit: remote holds %q", got)
	}
	if got, _ := read(t, dir, "knowledge/index.md"); got != "# index, edited in the app\n" {
		t.Errorf("remote edit: local holds %q", got)
	}

	// Deletions propagate when the other side is unchanged.
	os.Remove(filepath.Join(dir, "workers/registry.yaml"))
	u.appDelete("knowledge/index.md")
	u.mustSync(0, dir)
	if _, _, ok := u.appGet("workers/registry.yaml"); ok {
		t.Error("local delete: the remote file is still there")
	}
	if _, ok := read(t, dir, "knowledge/index.md"); ok {
		t.Error("remote delete: the local file is still there")
	}
	if _, err := os.Stat(filepath.Join(dir, "knowledge")); !os.IsNotExist(err) {
		t.Error("remote delete left an empty folder here")
	}

	// Both changed: a conflict. Nothing is overwritten; the remote version
	// lands beside the local one; exit 3, and again until it is settled.
	write(t, dir, "CLAUDE.md", "# mine\n")
	_, etag, _ = u.appGet("CLAUDE.md")
	theirs := u.appPut("CLAUDE.md", "# theirs\n", etag)
	out = u.mustSync(3, dir)
	copyName := "CLAUDE.md.conflict-" + shortETag(theirs)
	if !strings.Contains(out, copyName) || !strings.Contains(out, "conflicts left") {
		t.Errorf("the conflict is not reported:\n%s", out)
	}
	if got, _ := read(t, dir, "CLAUDE.md"); got != "# mine\n" {
		t.Errorf("conflict: local file now %q", got)
	}
	if got, _ := read(t, dir, copyName); got != "# theirs\n" {
		t.Errorf("conflict copy holds %q", got)
	}
	if got, _, _ := u.appGet("CLAUDE.md"); got != "# theirs\n" {
		t.Errorf("conflict: remote file now %q", got)
	}
	u.mustSync(3, dir)
	if _, _, ok := u.appGet(copyName); ok {
		t.Error("the conflict copy was uploaded")
	}
	// Settled: the user merges and deletes the copy; the merge goes up.
	write(t, dir, "CLAUDE.md", "# mine and theirs\n")
	os.Remove(filepath.Join(dir, copyName))
	u.mustSync(0, dir)
	if got, _, _ := u.appGet("CLAUDE.md"); got != "# mine and theirs\n" {
		t.Errorf("after settling: remote holds %q", got)
	}

	// Both created the same name: the same bytes agree, others conflict.
	write(t, dir, "same.md", "same\n")
	u.appPut("same.md", "same\n", "")
	write(t, dir, "differ.md", "here\n")
	there := u.appPut("differ.md", "there\n", "")
	u.mustSync(3, dir)
	if _, ok := read(t, dir, "same.md.conflict-"+shortETag(there)); ok {
		t.Error("identical new files made a conflict copy")
	}
	if got, _ := read(t, dir, "differ.md.conflict-"+shortETag(there)); got != "there\n" {
		t.Errorf("new-new conflict copy holds %q", got)
	}
	os.Remove(filepath.Join(dir, "differ.md.conflict-"+shortETag(there)))
	u.mustSync(0, dir)

	// Deleted here, changed there: the newer version comes back. Changed
	// here, deleted there: the edit goes up again.
	os.Remove(filepath.Join(dir, "same.md"))
	_, etag, _ = u.appGet("same.md")
	u.appPut("same.md", "same, newer\n", etag)
	write(t, dir, "differ.md", "here, newer\n")
	u.appDelete("differ.md")
	u.mustSync(0, dir)
	if got, _ := read(t, dir, "same.md"); got != "same, newer\n" {
		t.Errorf("deleted here, changed there: local holds %q", got)
	}
	if got, _, _ := u.appGet("differ.md"); got != "here, newer\n" {
		t.Errorf("changed here, deleted there: remote holds %q", got)
	}

	// A writer racing the sync (between its listing and its upload): the
	// upload's If-Match loses, which is a conflict, not an error.
	write(t, dir, "race.md", "v1\n")
	u.mustSync(0, dir)
	write(t, dir, "race.md", "v2 here\n")
	testHookPlanned = func() {
		_, etag, _ := u.appGet("race.md")
		u.appPut("race.md", "v2 in the app\n", etag)
	}
	out = u.mustSync(3, dir)
	testHookPlanned = nil
	if got, _, _ := u.appGet("race.md"); got != "v2 in the app\n" {
		t.Errorf("racing writer: remote holds %q\n%s", got, out)
	}
	if got, _ := read(t, dir, "race.md"); got != "v2 here\n" {
		t.Errorf("racing writer: local holds %q", got)
	}
	for name, content := range localFiles(t, dir) {
		if strings.HasPrefix(name, "race.md.conflict-") {
			if content != "v2 in the app\n" {
				t.Errorf("racing writer: the copy holds %q", content)
			}
			os.Remove(filepath.Join(dir, name))
		}
	}
	u.mustSync(0, dir)

	// Dry run: the plan is printed, nothing changes.
	write(t, dir, "planned.md", "x\n")
	u.appPut("remote-planned.md", "y\n", "")
	before, beforeLocal := u.appList(), localFiles(t, dir)
	out = u.mustSync(0, dir, "--dry-run")
	if !strings.Contains(out, "upload") || !strings.Contains(out, "planned.md") || !strings.Contains(out, "download") {
		t.Errorf("dry run printed:\n%s", out)
	}
	if after := u.appList(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("dry run changed the remote side: %v → %v", before, after)
	}
	if after := localFiles(t, dir); fmt.Sprint(after) != fmt.Sprint(beforeLocal) {
		t.Errorf("dry run changed the local side")
	}
	u.mustSync(0, dir)

	// Both sides now hold the same files.
	remote, local := u.appList(), localFiles(t, dir)
	if fmt.Sprint(keys(remote)) != fmt.Sprint(keys(local)) {
		t.Errorf("after the syncs: remote %v, local %v", keys(remote), keys(local))
	}
}

// TestSyncIgnore: .hqignore (gitignore syntax) keeps paths out both ways,
// and a path ignored after it was synced is left alone on both sides.
func TestSyncIgnore(t *testing.T) {
	u := devUser(t, devHQD(t), "ignore@example.com")
	dir := t.TempDir()
	write(t, dir, ".hqignore", "# scratch\n*.tmp\nbuild/\n!keep.tmp\n")
	write(t, dir, "a.md", "a\n")
	write(t, dir, "x.tmp", "x\n")
	write(t, dir, "keep.tmp", "k\n")
	write(t, dir, "build/out.o", "o\n")
	write(t, dir, "src/build/deep.o", "o\n")
	u.appPut("remote.tmp", "r\n", "")
	u.mustSync(0, dir)
	remote := u.appList()
	for _, p := range []string{"x.tmp", "build/out.o", "src/build/deep.o"} {
		if _, ok := remote[p]; ok {
			t.Errorf("ignored %s was uploaded", p)
		}
	}
	for _, p := range []string{".hqignore", "a.md", "keep.tmp"} {
		if _, ok := remote[p]; !ok {
			t.Errorf("%s was not uploaded", p)
		}
	}
	if _, ok := read(t, dir, "remote.tmp"); ok {
		t.Error("an ignored remote file was downloaded")
	}
	// Ignoring a synced file later deletes it nowhere.
	write(t, dir, ".hqignore", "*.tmp\nbuild/\n!keep.tmp\na.md\n")
	u.mustSync(0, dir)
	if _, _, ok := u.appGet("a.md"); !ok {
		t.Error("a file ignored after its sync was deleted remotely")
	}
	if _, ok := read(t, dir, "a.md"); !ok {
		t.Error("a file ignored after its sync was deleted here")
	}
	if _, ok := remote[".hq/state.json"]; ok {
		t.Error(".hq/ was synced")
	}
}

type syncSummary struct {
	Uploaded, Downloaded, DeletedRemote, DeletedLocal, Errors int
	Conflicts                                                 []string
	InSync                                                    bool
}

// summary finds the --json summary line in a sync's output, and checks
// that every line is JSON.
func summary(t testing.TB, out string) syncSummary {
	t.Helper()
	var sum *syncSummary
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue // stderr's last words
		}
		var v struct {
			Summary *syncSummary `json:"summary"`
			Action  string       `json:"action"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("--json printed a line that is not JSON: %q", line)
		}
		if v.Summary != nil {
			sum = v.Summary
		}
	}
	if sum == nil {
		t.Fatalf("no summary in:\n%s", out)
	}
	return *sum
}

// TestSyncResume kills hq mid-sync, both ways, and runs it again: nothing
// is lost, nothing is sent twice into a duplicate or a conflict copy.
func TestSyncResume(t *testing.T) {
	u := devUser(t, devHQD(t), "resume@example.com")
	const n = 1500
	dir := t.TempDir()
	for i := range n {
		write(t, dir, fmt.Sprintf("d%02d/f%04d.md", i%20, i), fmt.Sprintf("file %d\n", i))
	}
	u.killSyncAfter(dir, "upload", 300)
	out := u.mustSync(0, dir, "--json")
	if sum := summary(t, out); sum.Uploaded == 0 || sum.Uploaded >= n || len(sum.Conflicts) != 0 {
		t.Errorf("the rerun after a kill: %+v (want some, not all, of %d uploads and no conflicts)", sum, n)
	}
	u.checkSame(dir, n)

	// The other way: a new folder (made by the sync) fills from the remote side.
	dir2 := filepath.Join(t.TempDir(), "HQ")
	u.killSyncAfter(dir2, "download", 300)
	u.mustSync(0, dir2)
	u.checkSame(dir2, n)
	if sum := summary(t, u.mustSync(0, dir2, "--json")); sum.Uploaded+sum.Downloaded != 0 {
		t.Errorf("a sync after the resumed one did something: %+v", sum)
	}
}

// killSyncAfter runs hq sync DIR as a process and kills it (SIGKILL) once
// it has reported count actions of the kind.
func (u *user) killSyncAfter(dir, action string, count int) {
	u.t.Helper()
	cmd := exec.Command(os.Args[0], "sync", dir)
	cmd.Env = append(os.Environ(), "GO_HQ_TEST_MAIN=1", "HQ_CONFIG_DIR="+u.cfg)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		u.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	seen := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && seen < count {
		if strings.HasPrefix(sc.Text(), action+" ") {
			seen++
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if seen < count {
		u.t.Fatalf("hq sync ended after %d %s actions, before it could be killed", seen, action)
	}
}

// checkSame wants DIR and the remote side to hold the same n files, and
// no conflict copies.
func (u *user) checkSame(dir string, n int) {
	u.t.Helper()
	local, remote := localFiles(u.t, dir), u.appList()
	if len(local) != n || len(remote) != n {
		u.t.Fatalf("%d files here, %d remote, want %d each", len(local), len(remote), n)
	}
	for p, content := range local {
		if strings.Contains(p, ".conflict-") {
			u.t.Errorf("a conflict copy: %s", p)
		}
		if _, ok := remote[p]; !ok {
			u.t.Errorf("%s is not remote", p)
		} else if !digestBytes(content).sameBytes(remote[p]) {
			u.t.Errorf("%s differs: remote %s", p, remote[p])
		}
	}
}

func digestBytes(b string) digest {
	g := newDigester()
	_, _ = g.Write([]byte(b))
	return g.sum()
}
