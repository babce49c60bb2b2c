package sse_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/sse"
)

// serve streams log to every request, resuming after Last-Event-ID.
func serve(t *testing.T, log *sse.Log, heartbeat time.Duration, shutdown chan struct{}) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
		sw, err := sse.NewWriter(w, 3*time.Second, time.Second)
		if err != nil {
			return
		}
		_ = sse.Stream(r.Context(), sw, log, last, heartbeat, shutdown)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func read(t *testing.T, url, lastID string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestWireFormatAndResume(t *testing.T) {
	log := sse.NewLog(1 << 20)
	log.Append("status", []byte(`{"stage":"queued","kind":"status","msg":"queued"}`))
	log.Append("progress", []byte(`{"stage":"build","kind":"progress","msg":"Built A","done":1,"total":2}`))
	log.Must("done", []byte(`{"stage":"done","kind":"done","ok":true}`))
	log.Close()
	srv := serve(t, log, time.Minute, nil)
	want := "retry: 3000\n\n" +
		"id: 1\nevent: status\ndata: {\"stage\":\"queued\",\"kind\":\"status\",\"msg\":\"queued\"}\n\n" +
		"id: 2\nevent: progress\ndata: {\"stage\":\"build\",\"kind\":\"progress\",\"msg\":\"Built A\",\"done\":1,\"total\":2}\n\n" +
		"id: 3\nevent: done\ndata: {\"stage\":\"done\",\"kind\":\"done\",\"ok\":true}\n\n"
	if got := read(t, srv.URL, ""); got != want {
		t.Errorf("stream =\n%q\nwant\n%q", got, want)
	}
	if got := read(t, srv.URL, "2"); got != "retry: 3000\n\nid: 3\nevent: done\ndata: {\"stage\":\"done\",\"kind\":\"done\",\"ok\":true}\n\n" {
		t.Errorf("resume after 2 = %q", got)
	}
	if got := read(t, srv.URL, "3"); got != "retry: 3000\n\n" {
		t.Errorf("resume after the last = %q", got)
	}
}

// events reads a live stream and sends each event's id on ch.
func events(t *testing.T, url, lastID string, ch chan<- string) (cancel func()) {
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "id: ") || strings.HasPrefix(line, ": ") || strings.HasPrefix(line, "event: shutdown") {
				ch <- line
			}
		}
		close(ch)
	}()
	return cancel
}

func TestLiveSubscribers(t *testing.T) {
	log := sse.NewLog(1 << 20)
	srv := serve(t, log, time.Minute, nil)
	a, b := make(chan string, 100), make(chan string, 100)
	defer events(t, srv.URL, "", a)()
	cancelB := events(t, srv.URL, "", b)
	for i := range 3 {
		log.Append("log", []byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	for _, ch := range []chan string{a, b} {
		for i := 1; i <= 3; i++ {
			if got := <-ch; got != fmt.Sprintf("id: %d", i) {
				t.Fatalf("got %q, want id %d", got, i)
			}
		}
	}
	// b leaves; the log goes on; b comes back after what it saw.
	cancelB()
	log.Append("log", []byte(`{"n":3}`))
	log.Append("log", []byte(`{"n":4}`))
	b2 := make(chan string, 100)
	defer events(t, srv.URL, "3", b2)()
	for _, want := range []string{"id: 4", "id: 5"} {
		if got := <-b2; got != want {
			t.Fatalf("resumed stream: %q, want %q", got, want)
		}
		if got := <-a; got != want {
			t.Fatalf("first stream: %q, want %q", got, want)
		}
	}
	log.Close()
	if _, open := <-a; open {
		t.Error("the stream did not end with the log")
	}
}

func TestHeartbeatAndShutdown(t *testing.T) {
	log := sse.NewLog(1 << 20)
	shutdown := make(chan struct{})
	srv := serve(t, log, 50*time.Millisecond, shutdown)
	ch := make(chan string, 100)
	defer events(t, srv.URL, "", ch)()
	select {
	case got := <-ch:
		if got != ": keep-alive" {
			t.Errorf("got %q, want a heartbeat comment", got)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no heartbeat")
	}
	close(shutdown)
	for got := range ch {
		if got == "event: shutdown" {
			return
		}
	}
	t.Error("no shutdown event")
}

func TestLogBound(t *testing.T) {
	log := sse.NewLog(10)
	if !log.Append("log", []byte("12345")) || !log.Append("log", []byte("12345")) {
		t.Fatal("events within the bound refused")
	}
	if log.Append("log", []byte("x")) || log.Dropped() != 1 {
		t.Error("an event past the bound was kept")
	}
	if !log.Must("done", []byte("{}")) || log.Len() != 3 {
		t.Error("the final event was refused")
	}
	log.Close()
	if log.Append("log", []byte("x")) || log.Must("done", []byte("x")) {
		t.Error("a closed log took an event")
	}
}

// TestSlowClient: a client that stops reading is dropped, and the
// publisher is never blocked by it.
func TestSlowClient(t *testing.T) {
	log := sse.NewLog(1 << 30)
	done := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, _ := sse.NewWriter(w, time.Second, 200*time.Millisecond)
		done <- sse.Stream(r.Context(), sw, log, 0, time.Minute, nil)
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	big := []byte(`"` + strings.Repeat("x", 64<<10) + `"`)
	start := time.Now()
	for range 400 { // 25 MiB, far past any socket buffer
		log.Append("log", big)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("publishing took %v: a slow reader held it up", d)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("the stream to a client that does not read ended cleanly")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a client that does not read was never dropped")
	}
}
