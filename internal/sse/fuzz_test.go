package sse_test

import (
	"bytes"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/sse"
)

// parsed is one event as a client reads it (the WHATWG event-stream
// interpretation), or a comment.
type parsed struct {
	id, typ, data string
	comment       bool
}

// parse reads a stream the way a browser's EventSource does: lines end at
// CRLF, CR or LF; "field: value" with one optional space; data lines join
// with "\n"; a blank line dispatches.
func parse(stream string) (out []parsed, longest int) {
	lines := regexp.MustCompile("\r\n|\r|\n").Split(stream, -1)
	var cur parsed
	var data []string
	pending := false
	for _, line := range lines[:len(lines)-1] { // the stream ends with a line break
		longest = max(longest, len(line))
		if line == "" {
			if pending {
				cur.data = strings.Join(data, "\n")
				out = append(out, cur)
			}
			cur, data, pending = parsed{}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			out = append(out, parsed{comment: true, data: strings.TrimPrefix(line[1:], " ")})
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			cur.id = value
		case "event":
			cur.typ = value
		case "data":
			data = append(data, value)
			pending = true
		}
	}
	return out, longest
}

// FuzzWriter: whatever bytes an event's type and data and a comment hold,
// the client reads back exactly one event with that id, that type (less
// its line breaks) and that data (its line breaks as "\n"), then the
// comment: nothing in them can forge another event or id, nothing panics,
// and no line is longer than the cap.
func FuzzWriter(f *testing.F) {
	f.Add("log", []byte(`{"stage":"build","kind":"log","msg":"✔ [1/2] Built X"}`), "keep-alive")
	f.Add("done", []byte("a\nid: 99\nevent: done\n\ndata: {}"), "x\n\nid: 7")
	f.Add("x\r\nid: 5", []byte("\r\r\n\n"), "\r")
	f.Add("", []byte(""), "")
	f.Add("big", bytes.Repeat([]byte("y"), sse.MaxData+1), "")
	f.Fuzz(func(t *testing.T, typ string, data []byte, comment string) {
		rec := httptest.NewRecorder()
		sw, err := sse.NewWriter(rec, time.Second, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := sw.Event(sse.Event{ID: 42, Type: typ, Data: data}); err != nil {
			t.Fatal(err)
		}
		if err := sw.Comment(comment); err != nil {
			t.Fatal(err)
		}
		got, longest := parse(rec.Body.String())
		if longest > sse.MaxData+len("data: ") {
			t.Fatalf("a line of %d bytes", longest)
		}
		if len(got) != 2 || !got[1].comment {
			t.Fatalf("stream %q read as %+v", rec.Body.String(), got)
		}
		strip := strings.NewReplacer("\r", "", "\n", "")
		if len(data) > sse.MaxData {
			if !got[0].comment || !strings.Contains(got[0].data, "too large") {
				t.Fatalf("an oversized event read as %+v", got[0])
			}
		} else {
			want := parsed{id: strconv.Itoa(42), typ: strip.Replace(typ),
				data: strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data))}
			if got[0] != want {
				t.Fatalf("event read as %+v, want %+v", got[0], want)
			}
		}
		if got[1].data != strip.Replace(comment) {
			t.Fatalf("comment read as %q", got[1].data)
		}
	})
}
