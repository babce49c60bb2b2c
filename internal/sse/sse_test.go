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

// modes are the two ways a stream is written: through net/http, and on a
// connection taken over from it (Detach). Every test runs in both.
var modes = []string{"net/http", "detached"}

// serve streams log to every request, resuming after Last-Event-ID; ended
// receives each stream's end.
func serve(t *testing.T, mode string, log *sse.Log, heartbeat time.Duration, shutdown chan struct{}, ended chan<- error) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
		stream := func(ctx context.Context, sw *sse.Writer) {
			err := sse.Stream(ctx, sw, log, last, heartbeat, shutdown)
			_ = sw.Close()
			if ended != nil {
				ended <- err
			}
		}
		if mode == "net/http" {
			sw, err := sse.NewWriter(w, 3*time.Second, 200*time.Millisecond)
			if err == nil {
				stream(r.Context(), sw)
			}
			return
		}
		sw, err := sse.Detach(w, r, 3*time.Second, 200*time.Millisecond)
		if err != nil {
			t.Errorf("Detach: %v", err)
			return
		}
		if !sw.Detached() {
			t.Error("an HTTP/1.1 stream was not detached")
		}
		go stream(context.Background(), sw)
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
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			srv := serve(t, mode, log, time.Minute, nil, nil)
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
		})
	}
	if evs := log.Events(); string(evs[1].Data) != `{"stage":"build","kind":"progress","msg":"Built A","done":1,"total":2}` {
		t.Errorf("an event's data reads back as %q", evs[1].Data)
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
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { liveSubscribers(t, mode) })
	}
}

func liveSubscribers(t *testing.T, mode string) {
	log := sse.NewLog(1 << 20)
	srv := serve(t, mode, log, time.Minute, nil, nil)
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
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { heartbeatAndShutdown(t, mode) })
	}
}

func heartbeatAndShutdown(t *testing.T, mode string) {
	log := sse.NewLog(1 << 20)
	shutdown := make(chan struct{})
	srv := serve(t, mode, log, 50*time.Millisecond, shutdown, nil)
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
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			log := sse.NewLog(1 << 30)
			ended := make(chan error, 1)
			srv := serve(t, mode, log, time.Minute, nil, ended)
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
			case err := <-ended:
				if err == nil {
					t.Error("the stream to a client that does not read ended cleanly")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a client that does not read was never dropped")
			}
		})
	}
}

// TestClientLeaves: a client that hangs up is let go, in both modes; a
// detached stream, which no net/http watcher covers, notices at its next
// heartbeat even when no event comes.
func TestClientLeaves(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			log := sse.NewLog(1 << 20)
			ended := make(chan error, 1)
			srv := serve(t, mode, log, 100*time.Millisecond, nil, ended)
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			head := make([]byte, 512)
			if n, err := conn.Read(head); err != nil || !strings.HasPrefix(string(head[:n]), "HTTP/1.1 200 OK\r\n") {
				t.Fatalf("answer %q, %v", head[:n], err)
			}
			conn.Close()
			select {
			case err := <-ended:
				if err == nil {
					t.Error("the stream of a client that left ended as if complete")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a stream whose client left is still open")
			}
		})
	}
}

// TestDetachedHeaders: the taken-over answer carries what net/http would
// have sent, the handler's headers included, and says it ends with the
// connection.
func TestDetachedHeaders(t *testing.T) {
	log := sse.NewLog(1 << 20)
	log.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "abc")
		sw, err := sse.Detach(w, r, time.Second, time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		go func() { _ = sse.Stream(context.Background(), sw, log, 0, time.Minute, nil); _ = sw.Close() }()
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache, no-transform",
		"X-Accel-Buffering": "no", "X-Request-Id": "abc"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if resp.Header.Get("Date") == "" || !resp.Close /* Connection: close */ || string(b) != "retry: 1000\n\n" {
		t.Errorf("Date %q, close %v, body %q", resp.Header.Get("Date"), resp.Close, b)
	}
}

// TestHTTP2StaysInHandler: an HTTP/2 connection cannot be taken over, so
// Detach writes the stream through net/http instead, and says so.
func TestHTTP2StaysInHandler(t *testing.T) {
	log := sse.NewLog(1 << 20)
	log.Append("log", []byte(`{"n":1}`))
	log.Close()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, err := sse.Detach(w, r, time.Second, time.Second)
		if err != nil || sw.Detached() {
			t.Errorf("Detach over %s: detached %v, %v", r.Proto, err == nil && sw.Detached(), err)
			return
		}
		_ = sse.Stream(r.Context(), sw, log, 0, time.Minute, nil)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || string(b) != "retry: 1000\n\nid: 1\nevent: log\ndata: {\"n\":1}\n\n" {
		t.Errorf("%s: %q", resp.Proto, b)
	}
}

// TestDetachedTLS: over HTTP/1.1 with TLS the taken-over connection is
// the TLS one, and a batch of events goes out as one record.
func TestDetachedTLS(t *testing.T) {
	log := sse.NewLog(1 << 20)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, err := sse.Detach(w, r, time.Second, time.Second)
		if err != nil || !sw.Detached() {
			t.Errorf("Detach over TLS and %s: %v", r.Proto, err)
			return
		}
		go func() { _ = sse.Stream(context.Background(), sw, log, 0, time.Minute, nil); _ = sw.Close() }()
	}))
	srv.StartTLS()
	defer srv.Close()
	for i := range 3 {
		log.Append("log", []byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	log.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	want := "retry: 1000\n\nid: 1\nevent: log\ndata: {\"n\":0}\n\nid: 2\nevent: log\ndata: {\"n\":1}\n\nid: 3\nevent: log\ndata: {\"n\":2}\n\n"
	if resp.TLS == nil || string(b) != want {
		t.Errorf("TLS %v: %q", resp.TLS != nil, b)
	}
}
