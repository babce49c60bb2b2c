package files_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-chi/chi/v5"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/files"
	"github.com/quantapix/hqd/internal/httpx"
	"github.com/quantapix/hqd/internal/itest"
)

// backend is one store under test, with a way to see every key it holds,
// so tests can prove that nothing landed outside the user's prefix.
type backend struct {
	name   string
	store  files.Store
	keys   func(t *testing.T) []string
	bucket string // s3 only
}

func dirBackend(t *testing.T) backend {
	d, err := files.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return backend{"dir", d, func(t *testing.T) []string {
		var keys []string
		_ = filepath.WalkDir(d.Root(), func(p string, de fs.DirEntry, err error) error {
			if err == nil && de.Type().IsRegular() {
				rel, _ := filepath.Rel(d.Root(), p)
				keys = append(keys, filepath.ToSlash(rel))
			}
			return nil
		})
		return keys
	}, ""}
}

func s3Backend(t *testing.T, m *itest.MinIO) backend {
	bucket := m.Bucket(t)
	s, err := files.NewS3(context.Background(), files.S3Config{Bucket: bucket, Region: m.Region, Endpoint: m.Endpoint, PathStyle: true, Credentials: m.Credentials(), Journal: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return backend{"s3", s, func(t *testing.T) []string {
		var keys []string
		p := s3.NewListObjectsV2Paginator(m.Client(), &s3.ListObjectsV2Input{Bucket: &bucket})
		for p.HasMorePages() {
			out, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatalf("listing bucket: %v", err)
			}
			for _, o := range out.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
		}
		return keys
	}, bucket}
}

// server serves the files routes with the user named by X-Test-User as the
// verified identity; token verification has its own tests.
func server(t *testing.T, store files.Store, maxUpload int64) *httptest.Server {
	r := chi.NewRouter()
	r.Use(httpx.Observe(discardLogger(), nil), httpx.LimitBody(httpx.MaxJSONBody))
	r.Group(func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				id := &auth.Identity{Sub: r.Header.Get("X-Test-User")}
				next.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
			})
		})
		(&files.Handlers{Store: store, MaxUpload: maxUpload}).Routes(r)
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

type client struct {
	t    *testing.T
	base string
	user string
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, a.body)
	}
}

func (a answer) code() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(a.body, &e)
	return e.Error.Code
}

// do sends a request with a raw (already escaped) path.
func (c client) do(method, rawPath string, body io.Reader, hdr ...string) answer {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+rawPath, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-Test-User", c.user)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

func (c client) put(path, content string, hdr ...string) answer {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"content": base64.StdEncoding.EncodeToString([]byte(content))})
	return c.do("PUT", "/api/files/"+path, bytes.NewReader(b), hdr...)
}

func (c client) mustPut(path, content string) string {
	c.t.Helper()
	a := c.put(path, content)
	if a.status != 200 {
		c.t.Fatalf("PUT %s = %d %s", path, a.status, a.body)
	}
	var p struct{ ETag string }
	a.json(c.t, &p)
	return p.ETag
}

func (c client) read(path string) (string, int) {
	c.t.Helper()
	a := c.do("GET", "/api/files/"+path, nil)
	if a.status != 200 {
		return "", a.status
	}
	var e struct{ Content string }
	a.json(c.t, &e)
	b, err := base64.StdEncoding.DecodeString(e.Content)
	if err != nil {
		c.t.Fatalf("content is not base64: %v", err)
	}
	return string(b), 200
}

type listing struct {
	Files []struct {
		Path, ETag, LastModified string
		Size                     int64
	}
	Folders   []string
	NextToken string
}

func (c client) list(query string) (listing, answer) {
	c.t.Helper()
	a := c.do("GET", "/api/files"+query, nil)
	var l listing
	if a.status == 200 {
		a.json(c.t, &l)
	}
	return l, a
}

// listAll pages through a listing and returns every entry in order.
func (c client) listAll(query string, limit int) []string {
	c.t.Helper()
	var out []string
	token := ""
	for range 100 {
		q := query + fmt.Sprintf("&limit=%d", limit)
		if token != "" {
			q += "&token=" + token
		}
		l, a := c.list(q)
		if a.status != 200 {
			c.t.Fatalf("list %s = %d %s", q, a.status, a.body)
		}
		if n := len(l.Files) + len(l.Folders); n > limit {
			c.t.Fatalf("page of %d entries, limit %d", n, limit)
		}
		for _, f := range l.Files {
			out = append(out, f.Path)
		}
		out = append(out, l.Folders...)
		if l.NextToken == "" {
			return out
		}
		token = l.NextToken
	}
	c.t.Fatal("listing never ended")
	return nil
}

func md5ETag(s string) string {
	h := md5.Sum([]byte(s))
	return `"` + hex.EncodeToString(h[:]) + `"`
}

func TestConformance(t *testing.T) {
	m := itest.StartMinIO(t)
	for _, mk := range []func(*testing.T) backend{dirBackend, func(t *testing.T) backend { return s3Backend(t, m) }} {
		b := mk(t)
		t.Run(b.name, func(t *testing.T) { conformance(t, b) })
	}
}

func conformance(t *testing.T, b backend) {
	srv := server(t, b.store, 1<<20)
	alice := client{t, srv.URL, "alice-0001"}

	t.Run("envelope round trip", func(t *testing.T) {
		alice := client{t, srv.URL, alice.user}
		etag := alice.mustPut("env/CLAUDE.md", "# hello\n")
		if etag != md5ETag("# hello\n") {
			t.Errorf("ETag = %s, want the MD5 %s", etag, md5ETag("# hello\n"))
		}
		a := alice.do("GET", "/api/files/env/CLAUDE.md", nil)
		var e struct {
			Path, Content, ContentType, ETag, LastModified string
			Size                                           int64
		}
		a.json(t, &e)
		if a.status != 200 || e.Path != "env/CLAUDE.md" || e.Content != base64.StdEncoding.EncodeToString([]byte("# hello\n")) || e.Size != 8 || e.ETag != etag || e.LastModified == "" {
			t.Errorf("GET = %d %+v", a.status, e)
		}
		if !strings.HasPrefix(e.ContentType, "text/markdown") {
			t.Errorf("contentType = %q, want text/markdown guessed from .md", e.ContentType)
		}
		b, _ := json.Marshal(map[string]string{"content": base64.StdEncoding.EncodeToString([]byte("{}")), "contentType": "application/vnd.hq+json"})
		alice.do("PUT", "/api/files/env/x.bin", bytes.NewReader(b))
		a = alice.do("GET", "/api/files/env/x.bin", nil)
		a.json(t, &e)
		if e.ContentType != "application/vnd.hq+json" {
			t.Errorf("contentType = %q, want the one sent", e.ContentType)
		}
	})

	t.Run("raw round trip, range and revalidation", func(t *testing.T) {
		alice := client{t, srv.URL, alice.user}
		body := strings.Repeat("0123456789", 100)
		a := alice.do("PUT", "/api/files/raw/data.txt?raw=1", strings.NewReader(body), "Content-Type", "text/plain")
		if a.status != 200 {
			t.Fatalf("raw PUT = %d %s", a.status, a.body)
		}
		a = alice.do("GET", "/api/files/raw/data.txt?raw=1", nil)
		if a.status != 200 || string(a.body) != body || a.header.Get("Content-Type") != "text/plain" || a.header.Get("Content-Length") != "1000" || a.header.Get("ETag") != md5ETag(body) || a.header.Get("Last-Modified") == "" {
			t.Errorf("raw GET = %d %v (%d bytes)", a.status, a.header, len(a.body))
		}
		for _, tc := range []struct{ rng, want, cr string }{
			{"bytes=0-9", "0123456789", "bytes 0-9/1000"},
			{"bytes=995-", "56789", "bytes 995-999/1000"},
			{"bytes=-3", "789", "bytes 997-999/1000"},
			{"bytes=990-5000", "0123456789", "bytes 990-999/1000"},
		} {
			a = alice.do("GET", "/api/files/raw/data.txt?raw=1", nil, "Range", tc.rng)
			if a.status != 206 || string(a.body) != tc.want || a.header.Get("Content-Range") != tc.cr {
				t.Errorf("Range %s = %d %q %q, want 206 %q %q", tc.rng, a.status, a.body, a.header.Get("Content-Range"), tc.want, tc.cr)
			}
		}
		a = alice.do("GET", "/api/files/raw/data.txt?raw=1", nil, "Range", "bytes=1000-")
		if a.status != 416 || a.code() != "range_not_satisfiable" {
			t.Errorf("Range past the end = %d %s, want 416", a.status, a.body)
		}
		a = alice.do("GET", "/api/files/raw/data.txt?raw=1", nil, "If-None-Match", md5ETag(body))
		if a.status != 304 || len(a.body) != 0 {
			t.Errorf("If-None-Match current = %d, want 304", a.status)
		}
		a = alice.do("GET", "/api/files/raw/data.txt?raw=1", nil, "If-None-Match", `"stale"`)
		if a.status != 200 {
			t.Errorf("If-None-Match stale = %d, want 200", a.status)
		}
		a = alice.do("GET", "/api/files/raw/missing.txt?raw=1", nil)
		if a.status != 404 || a.code() != "not_found" {
			t.Errorf("raw GET missing = %d %s", a.status, a.body)
		}
	})

	t.Run("large raw upload streams", func(t *testing.T) {
		alice := client{t, srv.URL, alice.user}
		big := client{t, server(t, b.store, 64<<20).URL, alice.user}
		data := bytes.Repeat([]byte("hq"), 10<<20) // 20 MiB: multipart on S3
		a := big.do("PUT", "/api/files/big/blob.bin?raw=1", bytes.NewReader(data))
		if a.status != 200 {
			t.Fatalf("PUT 20 MiB = %d %s", a.status, a.body)
		}
		a = big.do("GET", "/api/files/big/blob.bin?raw=1", nil)
		if a.status != 200 || !bytes.Equal(a.body, data) {
			t.Errorf("GET 20 MiB = %d, %d bytes", a.status, len(a.body))
		}
		a = alice.do("GET", "/api/files/big/blob.bin", nil)
		if a.status != 413 || a.code() != "file_too_large" || !strings.Contains(string(a.body), "raw=1") {
			t.Errorf("envelope GET of 20 MiB = %d %s, want 413 with a hint to use raw mode", a.status, a.body)
		}
	})

	t.Run("listing order, folders and pagination", func(t *testing.T) {
		bob := client{t, srv.URL, "bob-0002"}
		for _, p := range []string{"b", "a0", "a/b", "a-c", "a/c/d", "z/1", "z/2", "wor.txt", "workers/registry.yaml"} {
			bob.mustPut(p, p)
		}
		all := bob.listAll("?", 2)
		want := []string{"a-c", "a/b", "a/c/d", "a0", "b", "wor.txt", "workers/registry.yaml", "z/1", "z/2"}
		if !slices.Equal(all, want) {
			t.Errorf("listing = %v, want S3 byte order %v", all, want)
		}
		l, _ := bob.list("?delimiter=/")
		var names []string
		for _, f := range l.Files {
			names = append(names, f.Path)
		}
		if !slices.Equal(names, []string{"a-c", "a0", "b", "wor.txt"}) || !slices.Equal(l.Folders, []string{"a/", "workers/", "z/"}) || l.NextToken != "" {
			t.Errorf("delimited listing = files %v folders %v next %q", names, l.Folders, l.NextToken)
		}
		for _, limit := range []int{1, 2, 3} {
			got := bob.listAll("?delimiter=/", limit)
			slices.Sort(got)
			if !slices.Equal(got, []string{"a-c", "a/", "a0", "b", "wor.txt", "workers/", "z/"}) {
				t.Errorf("delimited listing in pages of %d = %v", limit, got)
			}
		}
		if got := bob.listAll("?prefix=wor", 1); !slices.Equal(got, []string{"wor.txt", "workers/registry.yaml"}) {
			t.Errorf("prefix=wor = %v", got)
		}
		if got := bob.listAll("?prefix=a/&delimiter=/", 100); !slices.Equal(got, []string{"a/b", "a/c/"}) {
			t.Errorf("prefix=a/ delimited = %v", got)
		}
		if got := bob.listAll("?prefix=nothing/", 5); len(got) != 0 {
			t.Errorf("empty prefix listing = %v", got)
		}
		if _, a := bob.list("?prefix=nothing/&delimiter=/"); !strings.Contains(string(a.body), `"folders":[]`) {
			t.Errorf("a delimited listing must carry folders, even empty: %s", a.body)
		}
		l, _ = bob.list("?limit=3")
		if len(l.Files) != 3 || l.NextToken == "" || l.Files[0].ETag != md5ETag("a-c") || l.Files[0].Size != 3 || l.Files[0].LastModified == "" {
			t.Errorf("first page = %+v", l)
		}
		// Exactly full last page: no token.
		if l, _ := bob.list("?prefix=z/&limit=2"); len(l.Files) != 2 || l.NextToken != "" {
			t.Errorf("a page that holds the rest must not carry a token: %+v", l)
		}
		// Deleting the last file of a folder removes the folder.
		bob.do("DELETE", "/api/files/a/c/d", nil)
		if got := bob.listAll("?prefix=a/&delimiter=/", 100); !slices.Equal(got, []string{"a/b"}) {
			t.Errorf("after deleting a/c/d: %v", got)
		}
	})

	t.Run("tokens bind user, prefix and delimiter", func(t *testing.T) {
		carol := client{t, srv.URL, "carol-0003"}
		dave := client{t, srv.URL, "dave-0004"}
		for i := range 5 {
			carol.mustPut(fmt.Sprintf("p/%d", i), "x")
			dave.mustPut(fmt.Sprintf("p/%d", i), "x")
		}
		l, _ := carol.list("?prefix=p/&limit=2")
		if l.NextToken == "" {
			t.Fatal("no token")
		}
		for _, tc := range []struct {
			name  string
			c     client
			query string
		}{
			{"another user", dave, "?prefix=p/&limit=2&token=" + l.NextToken},
			{"another prefix", carol, "?prefix=q/&limit=2&token=" + l.NextToken},
			{"another delimiter", carol, "?prefix=p/&delimiter=/&limit=2&token=" + l.NextToken},
			{"garbage", carol, "?prefix=p/&token=not-a-token"},
			{"forged", carol, "?token=" + base64.RawURLEncoding.EncodeToString([]byte(`{"u":"x","p":"","s":"users/dave-0004/hq/"}`))},
		} {
			_, a := tc.c.list(tc.query)
			if a.status != 400 || a.code() != "invalid_token" {
				t.Errorf("%s: list = %d %s, want 400 invalid_token", tc.name, a.status, a.body)
			}
		}
		if l, a := carol.list("?prefix=p/&limit=2&token=" + l.NextToken); a.status != 200 || len(l.Files) != 2 || l.Files[0].Path != "p/2" {
			t.Errorf("own token: %d %+v", a.status, l)
		}
	})

	t.Run("query rules", func(t *testing.T) {
		for _, q := range []string{"?limit=0", "?limit=101", "?limit=abc", "?limit=-1", "?delimiter=x", "?delimiter=%2C", "?prefix=/abs", "?prefix=a/../b", "?prefix=a//b"} {
			_, a := alice.list(q)
			if a.status != 400 {
				t.Errorf("list%s = %d %s, want 400", q, a.status, a.body)
			}
		}
	})

	t.Run("conditional writes and deletes", func(t *testing.T) {
		erin := client{t, srv.URL, "erin-0005"}
		if a := erin.put("c/new.txt", "one", "If-None-Match", "*"); a.status != 200 {
			t.Fatalf("create-only PUT of a new file = %d %s", a.status, a.body)
		}
		if a := erin.put("c/new.txt", "two", "If-None-Match", "*"); a.status != 412 || a.code() != "precondition_failed" {
			t.Errorf("create-only PUT over a file = %d %s, want 412", a.status, a.body)
		}
		v1 := md5ETag("one")
		if a := erin.put("c/new.txt", "three", "If-Match", `"0000"`); a.status != 412 {
			t.Errorf("PUT with a stale If-Match = %d, want 412", a.status)
		}
		if got, _ := erin.read("c/new.txt"); got != "one" {
			t.Errorf("after refused writes the file holds %q, want %q", got, "one")
		}
		if a := erin.put("c/new.txt", "four", "If-Match", v1); a.status != 200 {
			t.Errorf("PUT with the current If-Match = %d %s", a.status, a.body)
		}
		// Two clients that both read v1: the second write must fail.
		if a := erin.put("c/new.txt", "five", "If-Match", v1); a.status != 412 {
			t.Errorf("second writer with the old ETag = %d, want 412", a.status)
		}
		if got, _ := erin.read("c/new.txt"); got != "four" {
			t.Errorf("file holds %q, want the first writer's %q", got, "four")
		}
		if a := erin.put("c/missing.txt", "x", "If-Match", v1); a.status != 412 {
			t.Errorf("If-Match on a missing file = %d, want 412", a.status)
		}
		if a := erin.put("c/x.txt", "x", "If-None-Match", `"abc"`); a.status != 400 {
			t.Errorf("If-None-Match other than * on a write = %d, want 400", a.status)
		}
		if a := erin.do("DELETE", "/api/files/c/new.txt", nil, "If-Match", v1); a.status != 412 {
			t.Errorf("DELETE with a stale If-Match = %d, want 412", a.status)
		}
		if got, _ := erin.read("c/new.txt"); got != "four" {
			t.Errorf("a refused delete changed the file: %q", got)
		}
		if a := erin.do("DELETE", "/api/files/c/gone.txt", nil, "If-Match", v1); a.status != 412 {
			t.Errorf("DELETE If-Match of a missing file = %d, want 412", a.status)
		}
		if a := erin.do("DELETE", "/api/files/c/new.txt", nil, "If-Match", md5ETag("four")); a.status != 204 {
			t.Errorf("DELETE with the current If-Match = %d %s", a.status, a.body)
		}
		if _, st := erin.read("c/new.txt"); st != 404 {
			t.Errorf("GET after DELETE = %d, want 404", st)
		}
		if a := erin.do("DELETE", "/api/files/c/never.txt", nil); a.status != 204 {
			t.Errorf("DELETE of a missing file = %d, want 204", a.status)
		}
	})

	t.Run("path rules", func(t *testing.T) {
		mallory := client{t, srv.URL, "mallory-0006"}
		before := b.keys(t)
		long := strings.Repeat("a", 256)
		overlong := strings.Repeat("abcdefgh/", 120) + "x"
		for _, raw := range []string{
			"", "%2Fetc%2Fpasswd", "a//b", "a/%2F/b", "a/./b", "a/../b", "a/%2e%2e/b", "%2E%2E/%2e%2e/users/alice-0001/hq/x",
			"..%2F..%2Fusers%2Falice-0001%2Fhq%2Fx", "a%5Cb", "a\\b", "a%00b", "a%0Ab", "a%1Fb", "a%7Fb", "a%C2%85b",
			"a%FFb", "a%C0%AFb", long, overlong, "a/", ".", "..",
		} {
			for _, method := range []string{"GET", "PUT", "DELETE"} {
				var body io.Reader
				if method == "PUT" {
					body = strings.NewReader(`{"content":"eA=="}`)
				}
				a := mallory.do(method, "/api/files/"+raw, body)
				if a.status != 400 || a.code() != "invalid_path" {
					t.Errorf("%s /api/files/%s = %d %s, want 400 invalid_path", method, raw, a.status, a.body)
				}
			}
		}
		if after := b.keys(t); !slices.Equal(before, after) {
			t.Errorf("refused paths changed the store: before %v after %v", before, after)
		}
		// Segments of exactly 255 bytes and keys of exactly 1024 bytes are fine.
		ok := strings.Repeat("b", 255)
		if a := mallory.put(ok, "x"); a.status != 200 {
			t.Errorf("255-byte segment = %d %s", a.status, a.body)
		}
		root := "users/mallory-0006/hq/"
		exact := strings.Repeat("c/", (1024-len(root))/2-1) + "cc"
		if len(root)+len(exact) != 1024 {
			t.Fatalf("test key is %d bytes", len(root)+len(exact))
		}
		if a := mallory.put(exact, "x"); a.status != 200 {
			t.Errorf("1024-byte key = %d %s", a.status, a.body)
		}
		if a := mallory.put(exact+"c", "x"); a.status != 400 {
			t.Errorf("1025-byte key = %d, want 400", a.status)
		}
		// Decoded once: %252e%252e is the literal name "%2e%2e", not "..".
		if a := mallory.put("%252e%252e/x", "x"); a.status != 200 {
			t.Errorf("literal %%2e%%2e name = %d %s", a.status, a.body)
		}
		for _, k := range b.keys(t) {
			if !strings.HasPrefix(k, "users/") {
				t.Errorf("key %q outside users/", k)
			}
		}
		if !slices.Contains(b.keys(t), root+"%2e%2e/x") {
			t.Errorf("the literal name was not stored as %q: %v", root+"%2e%2e/x", b.keys(t))
		}
	})

	t.Run("users are isolated", func(t *testing.T) {
		frank := client{t, srv.URL, "frank-0007"}
		grace := client{t, srv.URL, "grace-0008"}
		frank.mustPut("secret.md", "frank's")
		if _, st := grace.read("secret.md"); st != 404 {
			t.Errorf("grace reads frank's file: %d", st)
		}
		if got := grace.listAll("?", 100); len(got) != 0 {
			t.Errorf("grace lists %v", got)
		}
		grace.do("DELETE", "/api/files/secret.md", nil)
		if got, _ := frank.read("secret.md"); got != "frank's" {
			t.Errorf("frank's file after grace's delete: %q", got)
		}
	})

	t.Run("bad bodies", func(t *testing.T) {
		henry := client{t, srv.URL, "henry-0009"}
		for _, tc := range []struct {
			name, body string
			status     int
		}{
			{"invalid base64", `{"content":"***"}`, 400},
			{"not JSON", `content=x`, 400},
			{"unknown field", `{"content":"eA==","owner":"x"}`, 400},
			{"no content", `{"contentType":"text/plain"}`, 400},
			{"wrong type", `{"content":5}`, 400},
			{"trailing data", `{"content":"eA=="} {}`, 400},
		} {
			a := henry.do("PUT", "/api/files/bad.txt", strings.NewReader(tc.body))
			if a.status != tc.status {
				t.Errorf("%s: PUT = %d %s, want %d", tc.name, a.status, a.body, tc.status)
			}
		}
		huge := `{"content":"` + strings.Repeat("A", 10<<20) + `"}`
		if a := henry.do("PUT", "/api/files/bad.txt", strings.NewReader(huge)); a.status != 413 {
			t.Errorf("11 MiB JSON body = %d, want 413", a.status)
		}
		if a := henry.do("PUT", "/api/files/bad.txt?raw=1", bytes.NewReader(make([]byte, 2<<20))); a.status != 413 {
			t.Errorf("raw upload over HQD_MAX_UPLOAD = %d, want 413", a.status)
		}
		if _, st := henry.read("bad.txt"); st != 404 {
			t.Errorf("a refused body left a file: %d", st)
		}
	})

	t.Run("content types are media types", func(t *testing.T) {
		c := client{t, srv.URL, "types-0011"}
		for _, bad := range []string{"@@@", "text", "text/plain; charset", `text/plain; a="open`, "text/plain;;;=x"} {
			a := c.do("PUT", "/api/files/t.txt?raw=1", strings.NewReader("x"), "Content-Type", bad)
			if a.status != 400 || a.code() != "invalid_content_type" {
				t.Errorf("raw PUT with Content-Type %q = %d %s, want 400 invalid_content_type", bad, a.status, a.body)
			}
		}
		env, _ := json.Marshal(map[string]string{"content": "eA==", "contentType": "text/plain\r\nX-Injected: 1"})
		if a := c.do("PUT", "/api/files/t.txt", bytes.NewReader(env)); a.status != 400 || a.code() != "invalid_content_type" {
			t.Errorf("envelope with CR/LF in contentType = %d %s", a.status, a.body)
		}
		if _, st := c.read("t.txt"); st != 404 {
			t.Errorf("a refused write left a file: %d", st)
		}
		// A good one is stored in its canonical form.
		c.do("PUT", "/api/files/t.md?raw=1", strings.NewReader("# x"), "Content-Type", "Text/Markdown; Charset=UTF-8")
		if _, a := c.raw("t.md"); a.header.Get("Content-Type") != "text/markdown; charset=UTF-8" {
			t.Errorf("stored Content-Type = %q", a.header.Get("Content-Type"))
		}
	})

	t.Run("move and copy", func(t *testing.T) { moves(t, b, srv.URL) })

	t.Run("a file and a folder of one name", func(t *testing.T) {
		ivy := client{t, srv.URL, "ivy-0010"}
		ivy.mustPut("n/a", "file")
		a := ivy.put("n/a/b", "nested")
		want := 200
		if b.name == "dir" {
			want = 409 // a directory cannot be both; S3 can
		}
		if a.status != want {
			t.Errorf("PUT n/a/b over file n/a = %d %s, want %d", a.status, a.body, want)
		}
		if want == 409 && a.code() != "path_conflict" {
			t.Errorf("code = %q, want path_conflict", a.code())
		}
		if got, _ := ivy.read("n/a"); got != "file" {
			t.Errorf("n/a holds %q", got)
		}
	})
}

func TestStoreDown(t *testing.T) {
	port := itest.FreePort(t) // nothing listens there
	s, err := files.NewS3(context.Background(), files.S3Config{Bucket: "down", Region: "us-east-1", Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), PathStyle: true, Credentials: (&itest.MinIO{AccessKey: "a", SecretKey: "b"}).Credentials(), Journal: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := client{t, server(t, s, 1<<20).URL, "user-1"}
	for _, tc := range []struct{ method, path string }{{"GET", "/api/files/x"}, {"GET", "/api/files"}, {"DELETE", "/api/files/x"}} {
		a := c.do(tc.method, tc.path, nil)
		if (a.status != 503 && a.status != 502) || a.header.Get("Retry-After") == "" || a.code() != "store_unavailable" {
			t.Errorf("%s %s with the store down = %d %v %s, want 503 with Retry-After", tc.method, tc.path, a.status, a.header, a.body)
		}
		if strings.Contains(string(a.body), "127.0.0.1") {
			t.Errorf("the answer leaks the store's address: %s", a.body)
		}
	}
	if a := c.put("x", "y"); a.status != 503 {
		t.Errorf("PUT with the store down = %d", a.status)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
