package bench

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// TestStoreOutage breaks the store on purpose: with MinIO stopped, files
// requests answer 503 with Retry-After (never a 500, never a hang), health
// checks go on, readiness says the store is down; with MinIO back, files
// written before the outage are intact and writes work again.
func TestStoreOutage(t *testing.T) {
	m := itest.StartMinIO(t)
	bucket := m.Bucket(t)
	p := start(t, "HQD_STORAGE=s3", "HQD_BUCKET="+bucket, "HQD_S3_ENDPOINT="+m.Endpoint, "HQD_S3_PATH_STYLE=1",
		"AWS_ACCESS_KEY_ID="+m.AccessKey, "AWS_SECRET_ACCESS_KEY="+m.SecretKey, "HQD_AWS_REGION="+m.Region)
	tok := signIn(t, p.url)
	client := &http.Client{Timeout: 20 * time.Second}
	do := func(method, path string, body []byte) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, p.url+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, _ := do("PUT", "/api/files/keep.md?raw=1", []byte("before the outage"))
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 {
		t.Fatalf("PUT = %d", resp.StatusCode)
	}

	m.Stop()
	for _, c := range []struct{ method, path string }{{"GET", "/api/files/keep.md?raw=1"}, {"PUT", "/api/files/new.md?raw=1"}, {"GET", "/api/files"}, {"DELETE", "/api/files/keep.md"}} {
		begin := time.Now()
		resp, body := do(c.method, c.path, []byte("x"))
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s with the store down = %d %s, want 503 with Retry-After", c.method, c.path, resp.StatusCode, body)
		}
		if d := time.Since(begin); d > 5*time.Second {
			t.Errorf("%s %s took %v with the store down", c.method, c.path, d)
		}
	}
	if resp, _ := do("GET", "/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("/healthz with the store down = %d", resp.StatusCode)
	}
	if resp, body := do("GET", "/readyz", nil); resp.StatusCode != 503 || !bytes.Contains(body, []byte(`"store":{"ok":false`)) {
		t.Errorf("/readyz with the store down = %d %s", resp.StatusCode, body)
	}

	m.Restart(t)
	resp, body := do("GET", "/api/files/keep.md?raw=1", nil)
	if resp.StatusCode != 200 || string(body) != "before the outage" || resp.Header.Get("ETag") != etag {
		t.Errorf("after the outage keep.md = %d %q %s", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
	if resp, _ := do("PUT", "/api/files/after.md?raw=1", []byte("after")); resp.StatusCode != 200 {
		t.Errorf("PUT after the outage = %d", resp.StatusCode)
	}
	if resp, body := do("GET", "/api/files/new.md?raw=1", nil); resp.StatusCode != 404 {
		t.Errorf("a write refused during the outage left a file: %d %s", resp.StatusCode, body)
	}
}
