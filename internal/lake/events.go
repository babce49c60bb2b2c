package lake

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event is one event of SPEC §6.2, before it gets its id: stage, kind,
// msg, at, and the fields of its kind.
type Event map[string]any

// NewEvent makes an event stamped now (RFC 3339 UTC, milliseconds).
func NewEvent(stage, kind, msg string) Event {
	return Event{"stage": stage, "kind": kind, "msg": msg, "at": time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")}
}

// Done is the data of a job's last event (SPEC §6.2). Every done event is
// built from one, by Event: a run's end, a cancel, a cache hit.
type Done struct {
	Msg        string
	OK         bool
	Verified   bool
	ExitCode   *int // nil when no process ran for this job (a cache hit, a cancel while queued)
	DurationMs int64
	Cached     bool
	Cancelled  bool
	Limit      string // "", "timeout", "memory" or "pids"
}

// Event is d as the done event, stamped now.
func (d Done) Event() Event {
	ev := NewEvent("done", "done", d.Msg)
	var code any
	if d.ExitCode != nil {
		code = *d.ExitCode
	}
	ev["ok"], ev["verified"], ev["exitCode"], ev["durationMs"] = d.OK, d.Verified, code, d.DurationMs
	ev["cached"], ev["cancelled"], ev["limit"] = d.Cached, d.Cancelled, d.Limit
	return ev
}

// DoneOf reads a done event back (a cached result's, decoded from JSON).
func DoneOf(ev Event) Done {
	d := Done{}
	d.Msg, _ = ev["msg"].(string)
	d.OK, _ = ev["ok"].(bool)
	d.Verified, _ = ev["verified"].(bool)
	d.Cached, _ = ev["cached"].(bool)
	d.Cancelled, _ = ev["cancelled"].(bool)
	d.Limit, _ = ev["limit"].(string)
	switch n := ev["durationMs"].(type) {
	case float64:
		d.DurationMs = int64(n)
	case int64:
		d.DurationMs = n
	}
	switch n := ev["exitCode"].(type) {
	case float64:
		c := int(n)
		d.ExitCode = &c
	case int:
		d.ExitCode = &n
	}
	return d
}

// scratchSource is a check's Source.lean wherever its scratch directory
// is: /job in the sandbox, a run-N directory of an unconfined run.
var scratchSource = regexp.MustCompile(`(?:/[^\s:'"]*)?/(?:job|run-[0-9]+)/Source\.lean`)

// Relative rewrites the paths an event shows (a diagnostic's file, the
// text of its message) relative to the project at dir, and a check's
// scratch file as Source.lean: users see their project's names, never the
// host's directories.
func (e Event) Relative(dir string) {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	rel := func(s string) string {
		if dir != "" {
			s = strings.ReplaceAll(s, prefix, "")
		}
		return scratchSource.ReplaceAllString(s, "Source.lean")
	}
	for _, k := range []string{"file", "msg"} {
		if s, ok := e[k].(string); ok {
			e[k] = rel(s)
		}
	}
}

// Kind is the event's kind, which is also its SSE event type.
func (e Event) Kind() string { s, _ := e["kind"].(string); return s }

// JSON is the event's one-line JSON.
func (e Event) JSON() []byte {
	b, err := json.Marshal(e)
	if err != nil {
		b, _ = json.Marshal(Event{"stage": e["stage"], "kind": e["kind"], "msg": "unprintable event", "at": e["at"]})
	}
	return b
}

// sorryRE is Lean's warning for a declaration that uses sorry, in either
// quote style (v4.24 changed 'sorry' to `sorry`).
var sorryRE = regexp.MustCompile("declaration uses ['`]sorry['`]")

// Assembler turns classified lines into events: a diagnostic or log entry
// with its continuation lines becomes one event, emitted when the next
// line of its stream (or the end of the run) closes it. It is safe for the
// stdout and stderr readers to call concurrently.
type Assembler struct {
	mu       sync.Mutex
	c        *Classifier
	mode     Mode
	emit     func(Event)
	open     map[string]*entry
	errors   int
	sorry    bool
	lastStat string
}

type entry struct {
	ev    Event
	lines []string
	size  int  // bytes in lines
	cut   bool // continuation lines past MaxEntry were dropped
}

// MaxEntry bounds one diagnostic or log entry with its continuation lines:
// a run cannot make hqd hold an endless message.
const MaxEntry = 256 << 10

// NewAssembler reads the output of a run of mode and emits its events.
func NewAssembler(mode Mode, emit func(Event)) *Assembler {
	return &Assembler{c: NewClassifier(mode), mode: mode, emit: emit, open: map[string]*entry{}}
}

// stage maps the transcripts' stages to SPEC §6.2's.
func (a *Assembler) stage(l Line) string {
	switch {
	case l.Kind == "result":
		return "result"
	case l.Stage == "run":
		return "run"
	case a.mode == ModeLean:
		return "check"
	}
	return "build"
}

// Line takes one raw line of stream.
func (a *Assembler) Line(stream, raw string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.c.Classify(stream, Clean(raw))
	if l.Kind == "diagnostic_cont" || l.Kind == "log_cont" {
		if e := a.open[stream]; e != nil {
			if e.size+len(l.Msg) > MaxEntry {
				e.cut = true
				return
			}
			e.lines = append(e.lines, l.Msg)
			e.size += len(l.Msg)
			return
		}
		l.Kind = "text"
	}
	a.close(stream)
	st := a.stage(l)
	switch l.Kind {
	case "job":
		ev := NewEvent(st, "progress", l.Msg)
		ev["done"], ev["total"], ev["status"] = l.Done, l.Total, l.Status
		a.emit(ev)
	case "diagnostic":
		ev := NewEvent(st, "diagnostic", l.Msg)
		ev["severity"], ev["file"], ev["line"], ev["col"] = l.Severity, l.File, l.LineNo, l.Col
		ev["endLine"], ev["endCol"] = nilIfNone(l.EndLine), nilIfNone(l.EndCol)
		if l.Code != "" {
			ev["code"] = l.Code
		}
		a.open[stream] = &entry{ev: ev, lines: []string{l.Msg}, size: len(l.Msg)}
	case "log":
		ev := NewEvent(st, "log", l.Msg)
		ev["level"] = l.Level
		a.open[stream] = &entry{ev: ev, lines: []string{l.Msg}, size: len(l.Msg)}
	case "command":
		ev := NewEvent(st, "log", l.Msg)
		ev["level"] = "trace"
		a.emit(ev)
	case "exit_code":
		msg := l.Tool + " exited with code " + strconv.Itoa(l.ExitCode)
		if l.Signal != "" {
			msg += " (" + l.Signal + ")"
		}
		ev := NewEvent(st, "log", msg)
		ev["level"] = "error"
		a.emit(ev)
	case "success", "failures_header", "failed_target", "build_failed":
		a.emit(NewEvent(st, "status", l.Msg))
	case "result":
		ev := NewEvent("result", "result", l.Msg)
		ev["result"] = l.JSON
		a.emit(ev)
	default: // text, output
		a.emit(NewEvent(st, "log", l.Msg))
	}
}

func nilIfNone(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// close emits the open entry of stream, if any.
func (a *Assembler) close(stream string) {
	e := a.open[stream]
	if e == nil {
		return
	}
	delete(a.open, stream)
	// Trailing blank lines belong to the layout, not the message.
	lines := e.lines
	for len(lines) > 1 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	if e.cut {
		lines = append(lines, "…(message cut: more than 256 KiB)")
	}
	e.ev["msg"] = strings.Join(lines, "\n")
	if e.ev.Kind() == "diagnostic" {
		switch e.ev["severity"] {
		case "error":
			a.errors++
		case "warning":
			if sorryRE.MatchString(lines[0]) {
				a.sorry = true
			}
		}
	}
	a.emit(e.ev)
}

// Flush emits every open entry: the run has ended.
func (a *Assembler) Flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range []string{"stdout", "stderr"} {
		a.close(s)
	}
}

// Verdict says whether the output had an error diagnostic or a sorry.
func (a *Assembler) Verdict() (errors int, sorry bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.errors, a.sorry
}
