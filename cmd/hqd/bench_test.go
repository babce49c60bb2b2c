package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/quantapix/hqd/internal/itest"
)

// startInProcess runs hqd dev in this process with extra settings.
func startInProcess(b *testing.B, env map[string]string) *App {
	b.Helper()
	args := []string{"--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir=" + b.TempDir()}
	cfg, err := parseConfig("dev", args, func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	app, err := newApp(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = app.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return app
}

// BenchmarkFiles measures 1 KiB raw GET and PUT through the whole handler
// stack (request id, access log, metrics, token check, files handler, store)
// over loopback, on the dir store and on MinIO.
func BenchmarkFiles(b *testing.B) {
	m := itest.StartMinIO(b)
	for _, backend := range []struct {
		name string
		env  map[string]string
	}{
		{"dir", nil},
		{"minio", map[string]string{"HQD_STORAGE": "s3", "HQD_BUCKET": m.Bucket(b), "HQD_S3_ENDPOINT": m.Endpoint, "HQD_S3_PATH_STYLE": "1"}},
	} {
		b.Run(backend.name, func(b *testing.B) {
			b.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
			b.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
			app := startInProcess(b, backend.env)
			h := &hqd{t: b, URL: app.publicURL}
			h.waitReady()
			tok := devSignIn(b, h, "bench@example.com", "Passw0rd!").AccessToken
			payload := bytes.Repeat([]byte("x"), 1024)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			req := func(method string, body []byte) {
				r, _ := http.NewRequest(method, app.publicURL+"/api/files/bench/file.txt?raw=1", bytes.NewReader(body))
				r.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(r)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("%s = %d", method, resp.StatusCode)
				}
			}
			b.Run("PUT-1KiB", func(b *testing.B) {
				b.SetBytes(1024)
				for range b.N {
					req("PUT", payload)
				}
			})
			b.Run("GET-1KiB", func(b *testing.B) {
				b.SetBytes(1024)
				for range b.N {
					req("GET", nil)
				}
			})
		})
	}
}
