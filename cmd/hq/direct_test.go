package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/quantapix/hqd/internal/itest"
)

// serve is `hqd serve` on MinIO (S3 and STS) and cognito-local, as
// production runs it.
type serve struct {
	url    string
	cog    *itest.Cognito
	m      *itest.MinIO
	bucket string
}

func startServe(t *testing.T) *serve {
	t.Helper()
	cog := itest.StartCognito(t)
	m := itest.StartMinIO(t)
	bucket := m.Bucket(t)
	url := itest.StartHQD(t, itest.BuildCmd(t, "hqd"), []string{
		"HQD_STORAGE=s3", "HQD_BUCKET=" + bucket, "HQD_S3_ENDPOINT=" + m.Endpoint, "HQD_S3_PATH_STYLE=true", "HQD_AWS_REGION=" + m.Region,
		"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"HQD_COGNITO_USER_POOL_ID=" + cog.PoolID, "HQD_COGNITO_CLIENT_IDS=" + cog.ClientID,
		"HQD_COGNITO_ENDPOINT=" + cog.Endpoint, "HQD_JWT_ISSUER=" + cog.Issuer,
		"HQD_STS_ROLE_ARN=arn:aws:iam::000000000000:role/hqd-user", "HQD_STS_ENDPOINT=" + m.Endpoint,
		"HQD_DATA_DIR=" + t.TempDir(),
	}, "serve")
	return &serve{url: url, cog: cog, m: m, bucket: bucket}
}

// user signs a new user up at cognito-local and hq in.
func (s *serve) user(t *testing.T, email string) *user {
	t.Helper()
	u := &user{t: t, url: s.url, email: email, password: "Passw0rd!", cfg: filepath.Join(t.TempDir(), "hq"), s3: s.m.Endpoint}
	u.pwa = s.cog.SignUp(t, email, u.password).Access
	u.login()
	return u
}

// TestSyncDirect syncs straight with S3 (MinIO) under the STS session
// policy hqd's refresh route hands out: the bytes skip hqd, the rules do
// not; a file over 8 MiB goes up in parts; through hqd and direct agree.
func TestSyncDirect(t *testing.T) {
	st := startServe(t)
	u, m, bucket := st.user(t, "direct@example.com"), st.m, st.bucket
	dir := t.TempDir()
	big := make([]byte, 20<<20+123)
	_, _ = rand.Read(big)
	write(t, dir, "CLAUDE.md", "# HQ\n")
	write(t, dir, "data/big.bin", string(big))
	u.appPut("knowledge/index.md", "# index\n", "")
	u.mustSync(0, dir, "--direct")

	got, etag, _ := u.appGet("data/big.bin")
	if !bytes.Equal([]byte(got), big) {
		t.Fatalf("the 20 MiB file through hqd: %d bytes, differ", len(got))
	}
	if !strings.HasSuffix(strings.Trim(etag, `"`), "-3") {
		t.Errorf("the 20 MiB file was not uploaded in 3 parts: ETag %s", etag)
	}
	if !digestBytes(string(big)).sameBytes(etag) {
		t.Errorf("hq's multipart ETag of the 20 MiB file is not S3's %s", etag)
	}
	if c, _ := read(t, dir, "knowledge/index.md"); c != "# index\n" {
		t.Errorf("direct download: %q", c)
	}
	// The bytes went to the user's prefix, nowhere else.
	sub := strings.TrimSuffix(strings.TrimPrefix(u.session().Prefix, "users/"), "/hq/")
	out, err := m.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		if !strings.HasPrefix(aws.ToString(o.Key), "users/"+sub+"/hq/") {
			t.Errorf("an object outside the user's prefix: %s", aws.ToString(o.Key))
		}
	}

	// Direct and through hqd read the same state: no change either way.
	for _, flags := range [][]string{nil, {"--direct"}} {
		if sum := summary(t, u.mustSync(0, dir, append(flags, "--json")...)); sum.Uploaded+sum.Downloaded+sum.DeletedLocal+sum.DeletedRemote != 0 {
			t.Errorf("sync %v after a direct sync did something: %+v", flags, sum)
		}
	}

	// A deletion: MinIO ignores If-Match on DeleteObject, so hq checks the
	// version first; a changed file is not deleted.
	os.Remove(filepath.Join(dir, "data/big.bin"))
	u.mustSync(0, dir, "--direct")
	if _, _, ok := u.appGet("data/big.bin"); ok {
		t.Error("direct: the local delete did not reach S3")
	}
	os.Remove(filepath.Join(dir, "CLAUDE.md"))
	testHookPlanned = func() {
		_, etag, _ := u.appGet("CLAUDE.md")
		u.appPut("CLAUDE.md", "# the app's\n", etag)
	}
	u.mustSync(3, dir, "--direct")
	testHookPlanned = nil
	if c, _, _ := u.appGet("CLAUDE.md"); c != "# the app's\n" {
		t.Errorf("a delete racing a writer on S3: remote now %q", c)
	}
	if c, _ := read(t, dir, "CLAUDE.md"); c != "# the app's\n" {
		t.Errorf("a delete racing a writer on S3: the newer version is not back here: %q", c)
	}
}

// TestSync10000 syncs 10,000 small files up through hqd dev, then again
// with no change, then down into a new folder. hq runs as make build makes
// it (the race detector makes it 3 times slower; other tests run it so).
func TestSync10000(t *testing.T) {
	u := devUser(t, devHQD(t), "many@example.com")
	u.bin = itest.BuildCmd(t, "hq")
	const n = 10000
	dir := t.TempDir()
	for i := range n {
		write(t, dir, fmt.Sprintf("d%03d/f%05d.md", i%100, i), strings.Repeat("x", 1024+i%7168))
	}
	begin := time.Now()
	if sum := summary(t, u.mustSync(0, dir, "--json")); sum.Uploaded != n {
		t.Fatalf("uploaded %d of %d", sum.Uploaded, n)
	}
	t.Logf("upload: %v", time.Since(begin)) // a figure, not a check: make bench measures
	begin = time.Now()
	if sum := summary(t, u.mustSync(0, dir, "--json")); sum.Uploaded+sum.Downloaded != 0 {
		t.Errorf("a no-change sync of %d files did something: %+v", n, sum)
	}
	t.Logf("no-change sync: %v", time.Since(begin))
	begin = time.Now()
	dir2 := t.TempDir()
	if sum := summary(t, u.mustSync(0, dir2, "--json")); sum.Downloaded != n {
		t.Fatalf("downloaded %d of %d", sum.Downloaded, n)
	}
	t.Logf("download: %v", time.Since(begin))
	if len(localFiles(t, dir2)) != n {
		t.Errorf("the new folder holds %d files", len(localFiles(t, dir2)))
	}
}
