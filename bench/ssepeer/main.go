// Command ssepeer is the plain net/http Server-Sent Events server that
// issue 9's P4 sets beside hqd: each stream is a handler that waits for the
// next line, writes it and flushes, the way a net/http SSE endpoint is
// usually written. Its lines are made in-process, 400 of them 5 ms apart
// like the stand-in's "ticks" job, so it has no child, no token check and
// no classification to do: a floor for the work per line, not a rival.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"sync"
	"time"
)

// lines is every line so far, and a channel closed at the next one.
type lines struct {
	mu   sync.Mutex
	all  [][]byte
	done bool
	wake chan struct{}
}

func (l *lines) add(b []byte, last bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, b)
	l.done = last
	close(l.wake)
	l.wake = make(chan struct{})
}

func (l *lines) since(i int) ([][]byte, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all[i:], l.done, l.wake
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	wait := flag.Duration("wait", 2*time.Second, "time between /start and the first line, for the streams to attach")
	flag.Parse()
	l := &lines{wake: make(chan struct{})}
	var once sync.Once
	http.HandleFunc("POST /start", func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			go func() {
				time.Sleep(*wait)
				for i := 1; i <= 400; i++ {
					l.add(fmt.Appendf(nil, "id: %d\nevent: log\ndata: {\"msg\":\"info: tick %d\"}\n\n", i, time.Now().UnixNano()), false)
					time.Sleep(5 * time.Millisecond)
				}
				l.add([]byte("id: 401\nevent: done\ndata: {}\n\n"), true)
			}()
		})
	})
	http.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write([]byte("retry: 3000\n\n"))
		w.(http.Flusher).Flush()
		next := 0
		for {
			batch, done, wake := l.since(next)
			for _, b := range batch {
				if _, err := w.Write(b); err != nil {
					return
				}
			}
			w.(http.Flusher).Flush()
			next += len(batch)
			if done {
				return
			}
			select {
			case <-wake:
			case <-r.Context().Done():
				return
			}
		}
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
