package httpx

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// ErrBodyIdle is a request body that sent nothing for the idle timeout.
var ErrBodyIdle = errors.New("the request body stalled")

// BodyIdle ends a request whose body makes no progress for idle (SPEC §3,
// HQD_BODY_IDLE_TIMEOUT): every read of the body may wait at most that
// long for the next bytes, so a client trickling a byte now and then, or
// stopping halfway, cannot hold a connection for free; a large upload that
// keeps moving is never cut. The handler's read fails with ErrBodyIdle,
// which answers 408 where an answer can still be written (else net/http
// closes the connection).
func BodyIdle(idle time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if idle > 0 && r.Body != nil && r.Body != http.NoBody {
				r.Body = &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: idle}
			}
			next.ServeHTTP(w, r)
		})
	}
}

type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	done bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle)) // unsupported: no deadline, as before
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.release()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return n, ErrBodyIdle
		}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.release()
	return b.ReadCloser.Close()
}

// release lifts the deadline once the body is read: the connection's own
// reads (net/http's watch for a client that left, the next request) must
// not inherit it.
func (b *idleBody) release() {
	if !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}
