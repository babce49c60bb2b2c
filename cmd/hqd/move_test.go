package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// TestMoveCrash kills hqd (SIGKILL) inside a move, at the point where the
// destination is complete and the source not yet removed — between
// CopyObject and DeleteObject on S3 — and starts it again on the same data
// directory: after the restart there is exactly one file, the destination,
// byte-exact. On both stores.
func TestMoveCrash(t *testing.T) {
	m := itest.StartMinIO(t)
	for _, store := range []string{"dir", "s3"} {
		t.Run(store, func(t *testing.T) {
			dir := t.TempDir()
			var env []string
			if store == "s3" {
				env = []string{"HQD_STORAGE=s3", "HQD_BUCKET=" + m.Bucket(t), "HQD_S3_ENDPOINT=" + m.Endpoint, "HQD_S3_PATH_STYLE=1",
					"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
			}
			// The same address after the restart: the dev issuer is named by it.
			args := []string{"dev", fmt.Sprintf("--addr=127.0.0.1:%d", itest.FreePort(t)), "--metrics-addr=", "--data-dir=" + dir}
			h := startHQD(t, append(env, "GO_HQD_TEST_KILL_AFTER_COPY=1"), args...)
			h.waitReady()
			tok := devSignIn(t, h, "mover@example.com", "Passw0rd!").AccessToken
			data := make([]byte, 256*3)
			for i := range data {
				data[i] = byte(i)
			}
			if a := do(t, "PUT", h.URL+"/api/files/in/photo.raw?raw=1", tok, bytes.NewReader(data)); a.status != 200 {
				t.Fatalf("PUT = %d %s", a.status, a.body)
			}
			req, _ := http.NewRequest("POST", h.URL+"/api/files-move", strings.NewReader(`{"from":"in/photo.raw","to":"out/photo.raw"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				t.Fatalf("the move answered %d: hqd was to be killed inside it", resp.StatusCode)
			}
			<-h.exited

			h2 := startHQD(t, env, args...)
			h2.waitReady()
			// The s3 store finishes the move at start, in the background.
			var src call
			for range 100 {
				if src = do(t, "GET", h2.URL+"/api/files/in/photo.raw?raw=1", tok, nil); src.status == 404 {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			dst := do(t, "GET", h2.URL+"/api/files/out/photo.raw?raw=1", tok, nil)
			if src.status != 404 || dst.status != 200 || !bytes.Equal(dst.body, data) {
				t.Errorf("after the restart: source %d, destination %d (%d bytes); want only the destination, byte-exact", src.status, dst.status, len(dst.body))
			}
			if store == "s3" && !h2.logged(`"outcome":"finished"`) {
				t.Errorf("the restart did not report the settled move:\n%s", h2.Stdout())
			}
		})
	}
}
