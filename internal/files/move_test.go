package files_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantapix/hqd/internal/files"
	"github.com/quantapix/hqd/internal/itest"
)

// allBytes is a file no text decoding survives: every byte value, twice.
func allBytes() []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func (c client) move(body string, hdr ...string) answer {
	c.t.Helper()
	return c.do("POST", "/api/files-move", strings.NewReader(body), hdr...)
}

func (c client) raw(path string) ([]byte, answer) {
	c.t.Helper()
	a := c.do("GET", "/api/files/"+path+"?raw=1", nil)
	return a.body, a
}

func (c client) putRaw(path string, data []byte, hdr ...string) string {
	c.t.Helper()
	a := c.do("PUT", "/api/files/"+path+"?raw=1", bytes.NewReader(data), hdr...)
	if a.status != 200 {
		c.t.Fatalf("PUT %s = %d %s", path, a.status, a.body)
	}
	return a.header.Get("ETag")
}

// files lists every file of the user, recursively.
func (c client) files() []string {
	c.t.Helper()
	return c.listAll("?prefix=", 100)
}

// moves is the conformance suite of POST /api/files-move.
func moves(t *testing.T, b backend, base string) {
	t.Run("move is byte-exact and leaves one file", func(t *testing.T) {
		c := client{t, base, "mover-0001"}
		etag := c.putRaw("pics/logo.png", allBytes())
		a := c.move(`{"from":"pics/logo.png","to":"art/2026/logo.png"}`)
		var ans struct {
			Path, ETag string
			Size       int64
		}
		a.json(t, &ans)
		if a.status != 200 || ans.Path != "art/2026/logo.png" || ans.Size != 512 || ans.ETag == "" || a.header.Get("ETag") != ans.ETag {
			t.Fatalf("move = %d %s", a.status, a.body)
		}
		if ans.ETag != etag {
			t.Errorf("moved ETag %s, source's was %s (same bytes, same MD5)", ans.ETag, etag)
		}
		if got, a := c.raw("art/2026/logo.png"); a.status != 200 || !bytes.Equal(got, allBytes()) {
			t.Errorf("moved file = %d, %d bytes, want the 512 original bytes", a.status, len(got))
		}
		if got := c.files(); !slices.Equal(got, []string{"art/2026/logo.png"}) {
			t.Errorf("files after the move: %v", got)
		}
		if l, _ := c.list("?delimiter=/"); len(l.Folders) != 1 || l.Folders[0] != "art/" {
			t.Errorf("folders after the move: %v (the emptied pics/ must go)", l.Folders)
		}
	})

	t.Run("copy keeps both, byte-exact", func(t *testing.T) {
		c := client{t, base, "copier-0002"}
		c.putRaw("a.bin", allBytes())
		if a := c.move(`{"from":"a.bin","to":"b.bin","copy":true}`); a.status != 200 {
			t.Fatalf("copy = %d %s", a.status, a.body)
		}
		for _, p := range []string{"a.bin", "b.bin"} {
			if got, _ := c.raw(p); !bytes.Equal(got, allBytes()) {
				t.Errorf("%s after the copy: %d bytes", p, len(got))
			}
		}
		// The copy is a file of its own: writing one leaves the other.
		c.putRaw("b.bin", []byte("changed"))
		if got, _ := c.raw("a.bin"); !bytes.Equal(got, allBytes()) {
			t.Errorf("writing the copy changed the original")
		}
	})

	t.Run("an existing destination is refused unless overwrite", func(t *testing.T) {
		c := client{t, base, "dest-0003"}
		c.mustPut("from.md", "from")
		c.mustPut("to.md", "to")
		for _, body := range []string{`{"from":"from.md","to":"to.md"}`, `{"from":"from.md","to":"to.md","copy":true}`} {
			a := c.move(body)
			if a.status != 409 || a.code() != "destination_exists" || !strings.Contains(string(a.body), "to.md") {
				t.Errorf("%s = %d %s, want 409 destination_exists", body, a.status, a.body)
			}
		}
		if f, _ := c.read("from.md"); f != "from" {
			t.Errorf("from.md = %q after the refusal", f)
		}
		if f, _ := c.read("to.md"); f != "to" {
			t.Errorf("to.md = %q after the refusal", f)
		}
		if a := c.move(`{"from":"from.md","to":"to.md","overwrite":true}`); a.status != 200 {
			t.Fatalf("move with overwrite = %d %s", a.status, a.body)
		}
		if f, _ := c.read("to.md"); f != "from" {
			t.Errorf("to.md = %q after the overwrite", f)
		}
		if got := c.files(); !slices.Equal(got, []string{"to.md"}) {
			t.Errorf("files: %v", got)
		}
	})

	t.Run("If-Match on the source", func(t *testing.T) {
		c := client{t, base, "ifmatch-0004"}
		etag := c.mustPut("doc.md", "v1")
		c.mustPut("doc.md", "v2") // someone else's write: etag is now stale
		a := c.move(`{"from":"doc.md","to":"renamed.md"}`, "If-Match", etag)
		if a.status != 412 || a.code() != "precondition_failed" {
			t.Errorf("move with a stale If-Match = %d %s", a.status, a.body)
		}
		if got := c.files(); !slices.Equal(got, []string{"doc.md"}) {
			t.Errorf("files after the refused move: %v, want only doc.md", got)
		}
		if a := c.move(`{"from":"doc.md","to":"renamed.md"}`, "If-Match", md5ETag("v2")); a.status != 200 {
			t.Errorf("move with the current If-Match = %d %s", a.status, a.body)
		}
		if a := c.move(`{"from":"gone.md","to":"x.md"}`); a.status != 404 || a.code() != "not_found" {
			t.Errorf("move of a missing file = %d %s", a.status, a.body)
		}
		if a := c.move(`{"from":"gone.md","to":"x.md"}`, "If-Match", etag); a.status != 412 {
			t.Errorf("move of a missing file with If-Match = %d %s, want 412", a.status, a.body)
		}
	})

	t.Run("content type follows a guessed type, keeps a given one", func(t *testing.T) {
		c := client{t, base, "types-0005"}
		c.mustPut("notes.txt", "# notes")
		c.putRaw("data.txt", []byte("x,y"), "Content-Type", "text/csv")
		c.move(`{"from":"notes.txt","to":"notes.md"}`)
		c.move(`{"from":"data.txt","to":"data.dat"}`)
		for p, want := range map[string]string{"notes.md": "text/markdown", "data.dat": "text/csv"} {
			if _, a := c.raw(p); !strings.HasPrefix(a.header.Get("Content-Type"), want) {
				t.Errorf("%s is %q, want %s", p, a.header.Get("Content-Type"), want)
			}
		}
	})

	t.Run("bad requests change nothing", func(t *testing.T) {
		c := client{t, base, "bad-0006"}
		c.mustPut("keep.md", "keep")
		for body, code := range map[string]string{
			`{"from":"keep.md","to":"keep.md"}`:            "invalid_request",
			`{"from":"keep.md","to":"../x.md"}`:            "invalid_path",
			`{"from":"keep.md","to":""}`:                   "invalid_path",
			`{"from":"/keep.md","to":"x.md"}`:              "invalid_path",
			`{"from":"keep.md","to":"a//b.md"}`:            "invalid_path",
			`{"from":"keep.md","to":"x.md","rename":true}`: "invalid_request",
			`{"from":"keep.md","to":"x.md","copy":"yes"}`:  "invalid_request",
			`{"from":"keep.md"}`:                           "invalid_path",
			`{"from":"keep.md","to":"x.md"} {}`:            "invalid_request",
			`not json`:                                     "invalid_request",
		} {
			if a := c.move(body); a.status != 400 || a.code() != code {
				t.Errorf("%s = %d %s, want 400 %s", body, a.status, a.body, code)
			}
		}
		if got := c.files(); !slices.Equal(got, []string{"keep.md"}) {
			t.Errorf("files after bad requests: %v", got)
		}
	})

	t.Run("users are isolated", func(t *testing.T) {
		alice := client{t, base, "alice-0007"}
		bob := client{t, base, "bob-0008"}
		alice.mustPut("secret.md", "alice's")
		if a := bob.move(`{"from":"secret.md","to":"mine.md","copy":true}`); a.status != 404 {
			t.Errorf("bob copying a path only alice has = %d %s", a.status, a.body)
		}
		if got := bob.files(); len(got) != 0 {
			t.Errorf("bob has %v", got)
		}
		for _, k := range b.keys(t) {
			if strings.Contains(k, "mine.md") {
				t.Errorf("a key was made: %s", k)
			}
		}
	})

	if b.name == "dir" {
		t.Run("a file cannot move onto a folder", func(t *testing.T) {
			c := client{t, base, "folder-0009"}
			c.mustPut("f.md", "f")
			c.mustPut("dir/inner.md", "i")
			if a := c.move(`{"from":"f.md","to":"dir","overwrite":true}`); a.status != 409 || a.code() != "path_conflict" {
				t.Errorf("move onto a folder = %d %s", a.status, a.body)
			}
			if got := c.files(); !slices.Equal(got, []string{"dir/inner.md", "f.md"}) {
				t.Errorf("files: %v", got)
			}
		})
	}
}

// TestLargeCopy copies past the single-request limit (lowered here from 5
// GiB): the s3 store copies part by part; the result is byte-exact.
func TestLargeCopy(t *testing.T) {
	defer files.SetCopyLimits(6<<20, 5<<20)()
	m := itest.StartMinIO(t)
	data := make([]byte, 12<<20+3)
	_, _ = rand.Read(data)
	for _, b := range []backend{dirBackend(t), s3Backend(t, m)} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			if _, err := b.store.Put(ctx, "users/u/hq/big", bytes.NewReader(data), files.PutOptions{Size: int64(len(data))}); err != nil {
				t.Fatal(err)
			}
			for _, move := range []bool{false, true} {
				op, dst := b.store.Copy, "users/u/hq/big-copy"
				if move {
					op, dst = b.store.Move, "users/u/hq/big-moved"
				}
				inf, err := op(ctx, "users/u/hq/big", dst, files.CopyOptions{})
				if err != nil || inf.Size != int64(len(data)) {
					t.Fatalf("copy (move %v) = %+v, %v", move, inf, err)
				}
				if b.name == "s3" && !move && !strings.HasSuffix(inf.ETag, `-3"`) {
					t.Errorf("copy ETag %s: not the three-part copy", inf.ETag)
				}
				if move {
					break
				}
				obj, err := b.store.Get(ctx, dst, files.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				_, _ = got.ReadFrom(obj.Body)
				obj.Body.Close()
				if !bytes.Equal(got.Bytes(), data) {
					t.Errorf("the copy differs: %d bytes", got.Len())
				}
			}
			if _, err := b.store.Get(ctx, "users/u/hq/big", files.GetOptions{}); !errors.Is(err, files.ErrNotFound) {
				t.Errorf("the moved source is still there: %v", err)
			}
		})
	}
}

// TestMoveRaces drives the s3 store's move through its two dangerous
// moments: the source rewritten between copy and delete, and a crash
// there (a panic stands in for it; cmd/hqd's TestMoveCrash kills hqd).
func TestMoveRaces(t *testing.T) {
	m := itest.StartMinIO(t)
	b := s3Backend(t, m)
	ctx := context.Background()
	put := func(key, content string) string {
		t.Helper()
		inf, err := b.store.Put(ctx, key, strings.NewReader(content), files.PutOptions{Size: int64(len(content))})
		if err != nil {
			t.Fatal(err)
		}
		return inf.ETag
	}
	read := func(key string) string {
		obj, err := b.store.Get(ctx, key, files.GetOptions{})
		if err != nil {
			return "<" + err.Error() + ">"
		}
		defer obj.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(obj.Body)
		return buf.String()
	}
	defer func() { files.TestHookAfterCopy = nil }()

	t.Run("the source rewritten after the copy", func(t *testing.T) {
		put("users/u/hq/race.md", "v1")
		files.TestHookAfterCopy = func() { put("users/u/hq/race.md", "v2 written during the move") }
		_, err := b.store.Move(ctx, "users/u/hq/race.md", "users/u/hq/raced.md", files.CopyOptions{})
		files.TestHookAfterCopy = nil
		if !errors.Is(err, files.ErrPrecondition) {
			t.Errorf("move = %v, want ErrPrecondition", err)
		}
		if got := read("users/u/hq/race.md"); got != "v2 written during the move" {
			t.Errorf("source = %q", got)
		}
		if got := read("users/u/hq/raced.md"); !strings.Contains(got, "no such file") {
			t.Errorf("the copy was left behind: %q", got)
		}
	})

	t.Run("a crash after the copy is finished at the next start", func(t *testing.T) {
		journal := t.TempDir()
		s, err := files.NewS3(ctx, files.S3Config{Bucket: b.bucket, Region: m.Region, Endpoint: m.Endpoint, PathStyle: true, Credentials: m.Credentials(), Journal: journal})
		if err != nil {
			t.Fatal(err)
		}
		put("users/u/hq/crash.md", "before the crash")
		files.TestHookAfterCopy = func() { panic("crash") }
		func() {
			defer func() { _ = recover() }()
			_, _ = s.Move(ctx, "users/u/hq/crash.md", "users/u/hq/crashed.md", files.CopyOptions{})
		}()
		files.TestHookAfterCopy = nil
		if a, c := read("users/u/hq/crash.md"), read("users/u/hq/crashed.md"); a != c {
			t.Fatalf("at the crash: source %q, copy %q", a, c)
		}
		// The journal has one entry that the next start finds.
		// An entry for a move that never copied is dropped, source untouched.
		put("users/u/hq/never.md", "never moved")
		never, _ := json.Marshal(map[string]string{"id": "0123456789abcdef0123456789abcdef", "src": "users/u/hq/never.md", "dst": "users/u/hq/never-to.md", "etag": md5ETag("never moved")})
		if err := os.WriteFile(filepath.Join(journal, "0123456789abcdef0123456789abcdef.json"), never, 0o600); err != nil {
			t.Fatal(err)
		}
		restarted, err := files.NewS3(ctx, files.S3Config{Bucket: b.bucket, Region: m.Region, Endpoint: m.Endpoint, PathStyle: true, Credentials: m.Credentials(), Journal: journal})
		if err != nil {
			t.Fatal(err)
		}
		outcomes, err := restarted.FinishMoves(ctx)
		if err != nil || len(outcomes) != 2 {
			t.Fatalf("FinishMoves = %+v, %v", outcomes, err)
		}
		done := map[string]string{}
		for _, o := range outcomes {
			done[o.Src] = o.Done
		}
		if done["users/u/hq/crash.md"] != "finished" || done["users/u/hq/never.md"] != "not copied" {
			t.Errorf("outcomes: %v", done)
		}
		if got := read("users/u/hq/crash.md"); !strings.Contains(got, "no such file") {
			t.Errorf("the source is still there: %q", got)
		}
		if got := read("users/u/hq/crashed.md"); got != "before the crash" {
			t.Errorf("destination = %q", got)
		}
		if got := read("users/u/hq/never.md"); got != "never moved" {
			t.Errorf("the never-moved source = %q", got)
		}
		if ents, _ := os.ReadDir(journal); len(ents) != 0 {
			t.Errorf("journal entries left: %v", ents)
		}
	})
}
