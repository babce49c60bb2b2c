// Package sse owns the Server-Sent Events wire format (SPEC §6.2): events
// with ids, types and one-line JSON data, the retry hint, heartbeat
// comments; a Writer that flushes every event and gives up on a client
// that stops reading; and Log, a job's events kept in order so that a
// client resuming with Last-Event-ID gets exactly what it missed. It knows
// nothing about jobs or lake.
package sse

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Event is one server-sent event. ID is its position in its Log (1, 2, …).
type Event struct {
	ID   int64
	Type string
	Data []byte // one line of JSON

	wire []byte // the event as sent; made once by the Log, shared by every stream
}

// encoded is the event as it goes over the wire. Events in a Log are
// encoded once when appended; every subscriber sends the same bytes.
func (ev Event) encoded() []byte {
	if ev.wire != nil {
		return ev.wire
	}
	return encode(ev)
}

// MaxData is the most data one event may carry. A larger event is not
// sent (a comment says so): no client has to hold an unbounded line, and
// the ids stay in order so resuming still works.
const MaxData = 1 << 20

// encode writes one event. Whatever bytes it holds, it stays one event: a
// line break in the data continues it on another data line (clients join
// them with "\n"), and one in the type is dropped, so no data can forge an
// event or an id.
func encode(ev Event) []byte {
	id := strconv.FormatInt(ev.ID, 10)
	if len(ev.Data) > MaxData {
		return []byte(": event " + id + " too large (" + strconv.Itoa(len(ev.Data)) + " bytes), not sent\n\n")
	}
	b := make([]byte, 0, len("id: \nevent: \ndata: \n\n")+len(id)+len(ev.Type)+len(ev.Data))
	b = append(b, "id: "...)
	b = append(b, id...)
	b = append(b, "\nevent: "...)
	b = appendOneLine(b, ev.Type)
	data := ev.Data
	for {
		b = append(b, "\ndata: "...)
		// JSON data has no raw line breaks: one vectorised scan each, then
		// the whole of it in one append.
		if bytes.IndexByte(data, '\n') < 0 && bytes.IndexByte(data, '\r') < 0 {
			b = append(b, data...)
			break
		}
		i := bytes.IndexAny(data, "\r\n")
		b = append(b, data[:i]...)
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++ // CRLF is one line break, as a client reads it
		}
		data = data[i+1:]
	}
	return append(b, "\n\n"...)
}

// appendOneLine appends s without its CR and LF bytes (a type or a
// comment must not start another field).
func appendOneLine(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\r' && c != '\n' {
			b = append(b, c)
		}
	}
	return b
}

// Log is a job's events, append-only. Readers never block the writer or
// each other: each append publishes a new immutable view, which readers
// load without a lock (ten thousand streams wake at once on every event),
// and wait on the view's channel, which the next append closes. The events
// are shared by every subscriber, so a stream costs no copy of them.
type Log struct {
	mu      sync.Mutex // serialises appends
	view    atomic.Pointer[view]
	all     []Event // every event, with room to grow: views are prefixes of it
	size    int
	limit   int // bytes of data kept; beyond it only Must events are kept
	dropped int
}

type view struct {
	events []Event // capped at its length: a later append never shows through
	closed bool
	wake   chan struct{} // closed when the next view is published
}

// NewLog makes a log that keeps at most limit bytes of event data, plus
// the events appended with Must.
func NewLog(limit int) *Log {
	l := &Log{limit: limit}
	l.view.Store(&view{wake: make(chan struct{})})
	return l
}

// Append adds an event unless the log is full or closed; it reports
// whether it was kept. It never blocks on readers.
func (l *Log) Append(typ string, data []byte) bool {
	return l.append(typ, data, false)
}

// Must adds an event even when the log is full (the final done event).
func (l *Log) Must(typ string, data []byte) bool {
	return l.append(typ, data, true)
}

func (l *Log) append(typ string, data []byte, must bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.view.Load()
	if v.closed {
		return false
	}
	if !must && l.size+len(data) > l.limit {
		l.dropped++
		return false
	}
	l.size += len(data)
	ev := Event{ID: int64(len(v.events) + 1), Type: typ, Data: data}
	ev.wire = encode(ev)
	if k := len(ev.wire) - len("\n\n") - len(data); k >= 0 && bytes.Equal(ev.wire[k:k+len(data)], data) {
		ev.Data = ev.wire[k : k+len(data) : k+len(data)] // kept once, not twice
	}
	// Appended in place while there is room: a published view ends before
	// the new event and no reader looks past its end, so appending costs
	// no copy of the log (a run printing 150 MB appends a million events).
	l.all = append(l.all, ev)
	n := len(l.all)
	l.publish(&view{events: l.all[:n:n], wake: make(chan struct{})}, v)
	return true
}

func (l *Log) publish(next, prev *view) {
	l.view.Store(next)
	close(prev.wake)
}

// Close marks the end: readers get the rest and then stop.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v := l.view.Load(); !v.closed {
		l.publish(&view{events: v.events, closed: true, wake: make(chan struct{})}, v)
	}
}

// Dropped is how many events did not fit.
func (l *Log) Dropped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// Size is the bytes of event data kept.
func (l *Log) Size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// Len is the number of events kept.
func (l *Log) Len() int { return len(l.view.Load().events) }

// Events returns every event, for replaying a finished job. The slice is
// the caller's; the events' bytes are shared and must not be changed.
func (l *Log) Events() []Event { return slices.Clone(l.view.Load().events) }

// Since returns the events after id, whether the log is closed, and a
// channel closed at the next change.
func (l *Log) Since(id int64) (evs []Event, closed bool, changed <-chan struct{}) {
	v := l.view.Load()
	if id < 0 {
		id = 0
	}
	if id < int64(len(v.events)) {
		evs = v.events[id:]
	}
	return evs, v.closed, v.wake
}

// Writer writes one event stream to one client: through net/http, or,
// once Detach has taken the connection over, straight to the socket.
type Writer struct {
	conn         net.Conn // set when the stream owns its connection
	w            http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
	out          [][]byte // what the next flush sends; mostly the Log's own bytes
}

// header keeps every proxy from buffering the stream.
func header(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
}

func retryField(retry time.Duration) []byte {
	return []byte("retry: " + strconv.FormatInt(retry.Milliseconds(), 10) + "\n\n")
}

// NewWriter starts the stream through net/http: the headers, then the
// retry hint.
func NewWriter(w http.ResponseWriter, retry, writeTimeout time.Duration) (*Writer, error) {
	header(w.Header())
	sw := &Writer{w: w, rc: http.NewResponseController(w), writeTimeout: writeTimeout}
	w.WriteHeader(http.StatusOK)
	sw.out = append(sw.out, retryField(retry))
	return sw, sw.flush()
}

// Detach starts the stream like NewWriter but, over HTTP/1.x, takes the
// connection over from net/http. An open stream then costs its goroutine,
// its socket and this Writer, not net/http's per-connection reader, writer
// and watcher goroutine, and each event goes out as the Log's own bytes in
// one writev. The response has no chunked framing: it ends when the
// connection closes (Connection: close), as an event stream does anyway.
//
// When Detached reports true the caller must run the stream on a
// goroutine of its own, return from the handler (the request's context is
// cancelled then), and Close the Writer at the end. Over HTTP/2, which
// cannot be taken over, Detach is NewWriter.
func Detach(w http.ResponseWriter, r *http.Request, retry, writeTimeout time.Duration) (*Writer, error) {
	if r.ProtoMajor != 1 {
		return NewWriter(w, retry, writeTimeout)
	}
	h := w.Header().Clone()
	header(h)
	h.Set("Connection", "close")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	conn, _, err := http.NewResponseController(w).Hijack()
	if errors.Is(err, http.ErrNotSupported) {
		return NewWriter(w, retry, writeTimeout)
	}
	if err != nil {
		return nil, err
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&head) // a bytes.Buffer does not fail
	head.WriteString("\r\n")
	sw := &Writer{conn: conn, writeTimeout: writeTimeout}
	sw.out = append(sw.out, head.Bytes(), retryField(retry))
	if err := sw.flush(); err != nil {
		conn.Close()
		return nil, err
	}
	return sw, nil
}

// Detached says whether the stream owns its connection (see Detach).
func (sw *Writer) Detached() bool { return sw.conn != nil }

// Close ends a detached stream's connection; otherwise net/http does.
func (sw *Writer) Close() error {
	if sw.conn == nil {
		return nil
	}
	return sw.conn.Close()
}

// Event writes one event and flushes it.
func (sw *Writer) Event(ev Event) error { return sw.Events([]Event{ev}) }

// Events writes several events with one flush.
func (sw *Writer) Events(evs []Event) error {
	for _, ev := range evs {
		sw.out = append(sw.out, ev.encoded())
	}
	return sw.flush()
}

// Comment writes a comment line (a heartbeat).
func (sw *Writer) Comment(text string) error {
	b := appendOneLine([]byte(": "), text)
	sw.out = append(sw.out, append(b, "\n\n"...))
	return sw.flush()
}

// Shutdown tells the client the server is going away and when to retry.
func (sw *Writer) Shutdown(retry time.Duration) error {
	ms := strconv.FormatInt(retry.Milliseconds(), 10)
	sw.out = append(sw.out, []byte("retry: "+ms+"\nevent: shutdown\ndata: {\"retryMs\":"+ms+"}\n\n"))
	return sw.flush()
}

// flush sends what is queued. A client that does not take it within the
// write timeout is dropped: it can resume with Last-Event-ID, and the job
// never waits for it.
func (sw *Writer) flush() error {
	defer func() {
		clear(sw.out) // keep no event alive past its send
		sw.out = sw.out[:0]
	}()
	if sw.conn != nil {
		if sw.writeTimeout > 0 {
			_ = sw.conn.SetWriteDeadline(time.Now().Add(sw.writeTimeout)) // a net.Conn supports it
		}
		if _, ok := sw.conn.(*net.TCPConn); ok || len(sw.out) == 1 {
			bufs := net.Buffers(sw.out) // one writev on TCP
			_, err := bufs.WriteTo(sw.conn)
			return err
		}
		_, err := sw.conn.Write(bytes.Join(sw.out, nil)) // TLS: one record, not one per event
		return err
	}
	if sw.writeTimeout > 0 {
		_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.writeTimeout)) // unsupported writers just have no deadline
	}
	for _, b := range sw.out {
		if _, err := sw.w.Write(b); err != nil {
			return err
		}
	}
	return sw.rc.Flush()
}

// gone says whether the client of a detached stream has closed its side or
// reset the connection, by peeking at the socket without blocking. (For
// other streams net/http watches the connection and cancels the request.)
func (sw *Writer) gone() bool {
	c := sw.conn
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	var closed bool
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = n == 0 && err == nil || err != nil && err != syscall.EAGAIN && err != syscall.EINTR
		return true // never wait: this is a peek
	})
	return closed || err != nil
}

// ErrShutdown ends a stream because the server is shutting down.
var ErrShutdown = errors.New("server shutting down")

// ErrGone ends a detached stream whose client has closed the connection;
// it is found at the next heartbeat (or the next write).
var ErrGone = errors.New("client closed the stream")

// Stream sends log's events after lastID until the log is closed and sent,
// ctx ends (the client left), shutdown closes (then a shutdown event is
// sent first) or a write fails. A heartbeat comment goes out after every
// heartbeat of silence.
func Stream(ctx context.Context, sw *Writer, log *Log, lastID int64, heartbeat time.Duration, shutdown <-chan struct{}) error {
	timer := time.NewTimer(heartbeat)
	defer timer.Stop()
	for {
		evs, closed, changed := log.Since(lastID)
		if len(evs) > 0 {
			if err := sw.Events(evs); err != nil {
				return err
			}
			lastID = evs[len(evs)-1].ID
			timer.Reset(heartbeat)
			continue // more may have come while writing
		}
		if closed {
			return nil
		}
		select {
		case <-changed:
		case <-timer.C:
			if sw.conn != nil && sw.gone() {
				return ErrGone
			}
			if err := sw.Comment("keep-alive"); err != nil {
				return err
			}
			timer.Reset(heartbeat)
		case <-shutdown:
			_ = sw.Shutdown(5 * time.Second) // best effort: the client may be gone already
			return ErrShutdown
		case <-ctx.Done():
			select {
			case <-shutdown:
				_ = sw.Shutdown(5 * time.Second) // as above
				return ErrShutdown
			default:
			}
			return ctx.Err()
		}
	}
}
