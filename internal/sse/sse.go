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
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Event is one server-sent event. ID is its position in its Log (1, 2, …).
type Event struct {
	ID   int64
	Type string
	Data []byte // one line of JSON
}

// Log is a job's events, append-only. Readers never block the writer:
// they read what is there and wait on a channel that Append closes. The
// events are shared by every subscriber, so a stream costs no copy of them.
type Log struct {
	mu      sync.Mutex
	events  []Event
	size    int
	limit   int // bytes of data kept; beyond it only Must events are kept
	closed  bool
	dropped int
	wake    chan struct{}
}

// NewLog makes a log that keeps at most limit bytes of event data, plus
// the events appended with Must.
func NewLog(limit int) *Log {
	return &Log{limit: limit, wake: make(chan struct{})}
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
	if l.closed {
		return false
	}
	if !must && l.size+len(data) > l.limit {
		l.dropped++
		return false
	}
	l.size += len(data)
	l.events = append(l.events, Event{ID: int64(len(l.events) + 1), Type: typ, Data: data})
	close(l.wake)
	l.wake = make(chan struct{})
	return true
}

// Close marks the end: readers get the rest and then stop.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.wake)
	}
}

// Dropped is how many events did not fit.
func (l *Log) Dropped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// Len is the number of events kept.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// Events returns a copy of every event, for replaying a finished job.
func (l *Log) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// Since returns the events after id, whether the log is closed, and a
// channel closed at the next change.
func (l *Log) Since(id int64) (evs []Event, closed bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id < 0 {
		id = 0
	}
	if id < int64(len(l.events)) {
		evs = l.events[id:len(l.events):len(l.events)]
	}
	return evs, l.closed, l.wake
}

// Writer writes one event stream to one client.
type Writer struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
	buf          bytes.Buffer
}

// NewWriter starts the stream: headers that keep every proxy from
// buffering it, then the retry hint.
func NewWriter(w http.ResponseWriter, retry, writeTimeout time.Duration) (*Writer, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
	sw := &Writer{w: w, rc: http.NewResponseController(w), writeTimeout: writeTimeout}
	w.WriteHeader(http.StatusOK)
	sw.buf.WriteString("retry: ")
	sw.buf.WriteString(strconv.FormatInt(retry.Milliseconds(), 10))
	sw.buf.WriteString("\n\n")
	return sw, sw.flush()
}

// Event writes one event and flushes it.
func (sw *Writer) Event(ev Event) error { return sw.Events([]Event{ev}) }

// MaxData is the most data one event may carry. A larger event is not
// sent (a comment says so): no client has to hold an unbounded line, and
// the ids stay in order so resuming still works.
const MaxData = 1 << 20

// Events writes several events with one flush. Whatever bytes an event
// holds, it stays one event: a line break in the data continues it on
// another data line (clients join them with "\n"), and one in the type is
// dropped, so no data can forge an event or an id.
func (sw *Writer) Events(evs []Event) error {
	for _, ev := range evs {
		if len(ev.Data) > MaxData {
			sw.buf.WriteString(": event ")
			sw.buf.WriteString(strconv.FormatInt(ev.ID, 10))
			sw.buf.WriteString(" too large (")
			sw.buf.WriteString(strconv.Itoa(len(ev.Data)))
			sw.buf.WriteString(" bytes), not sent\n\n")
			continue
		}
		sw.buf.WriteString("id: ")
		sw.buf.WriteString(strconv.FormatInt(ev.ID, 10))
		sw.buf.WriteString("\nevent: ")
		writeOneLine(&sw.buf, ev.Type)
		data := ev.Data
		if bytes.IndexByte(data, '\n') < 0 && bytes.IndexByte(data, '\r') < 0 {
			// JSON data has no raw line breaks: one vectorised scan each, on
			// the path every subscriber takes for every event.
			sw.buf.WriteString("\ndata: ")
			sw.buf.Write(data)
			sw.buf.WriteString("\n\n")
			continue
		}
		for {
			sw.buf.WriteString("\ndata: ")
			i := bytes.IndexAny(data, "\r\n")
			if i < 0 {
				sw.buf.Write(data)
				break
			}
			sw.buf.Write(data[:i])
			if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				i++ // CRLF is one line break, as a client reads it
			}
			data = data[i+1:]
		}
		sw.buf.WriteString("\n\n")
	}
	return sw.flush()
}

// writeOneLine writes s without its CR and LF bytes (a type or a comment
// must not start another field).
func writeOneLine(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
	}
}

// Comment writes a comment line (a heartbeat).
func (sw *Writer) Comment(text string) error {
	sw.buf.WriteString(": ")
	writeOneLine(&sw.buf, text)
	sw.buf.WriteString("\n\n")
	return sw.flush()
}

// Shutdown tells the client the server is going away and when to retry.
func (sw *Writer) Shutdown(retry time.Duration) error {
	sw.buf.WriteString("retry: ")
	sw.buf.WriteString(strconv.FormatInt(retry.Milliseconds(), 10))
	sw.buf.WriteString("\nevent: shutdown\ndata: {\"retryMs\":")
	sw.buf.WriteString(strconv.FormatInt(retry.Milliseconds(), 10))
	sw.buf.WriteString("}\n\n")
	return sw.flush()
}

// flush sends what is buffered. A client that does not take it within the
// write timeout is dropped: it can resume with Last-Event-ID, and the job
// never waits for it.
func (sw *Writer) flush() error {
	if sw.writeTimeout > 0 {
		_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.writeTimeout)) // unsupported writers just have no deadline
	}
	_, err := sw.w.Write(sw.buf.Bytes())
	sw.buf.Reset()
	if err != nil {
		return err
	}
	return sw.rc.Flush()
}

// ErrShutdown ends a stream because the server is shutting down.
var ErrShutdown = errors.New("server shutting down")

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
