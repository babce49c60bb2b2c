package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// barMin: transfers smaller than this finish before a bar would help.
const barMin = 4 << 20

// bar is a progress bar on stderr when stderr is a terminal, and nothing
// otherwise (scripts and logs get lines, not carriage returns).
type bar struct {
	pb *progressbar.ProgressBar
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newBar shows a bar for total bytes (-1 when unknown) described by desc.
func newBar(e env, total int64, desc string) *bar {
	if !isTerminal(e.stderr) || (total >= 0 && total < barMin) {
		return &bar{}
	}
	return &bar{pb: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)}
}

func (b *bar) add(n int64) {
	if b.pb != nil {
		_ = b.pb.Add64(n)
	}
}

func (b *bar) Write(p []byte) (int, error) {
	b.add(int64(len(p)))
	return len(p), nil
}

// clear takes the bar off the line so that a message can be printed.
func (b *bar) clear() {
	if b.pb != nil {
		_ = b.pb.Clear()
	}
}

func (b *bar) finish() {
	if b.pb != nil {
		_ = b.pb.Finish()
	}
}

// event is one thing a sync did or found, printed as a line or as JSON.
type event struct {
	Action string `json:"action"` // upload, download, delete-remote, delete-local, conflict, error, …
	Path   string `json:"path"`
	ETag   string `json:"etag,omitempty"`
	Size   int64  `json:"size,omitempty"`
	To     string `json:"to,omitempty"` // a conflict's copy of the remote version
	Detail string `json:"detail,omitempty"`
}

// reporter prints a sync's events: one line each, one JSON object each
// with --json, or (on a terminal, for a long sync) a progress bar with only
// the conflicts and errors printed above it.
type reporter struct {
	mu     sync.Mutex
	out    io.Writer
	asJSON bool
	bar    *bar
}

func (r *reporter) report(ev event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.asJSON {
		_ = json.NewEncoder(r.out).Encode(ev)
		return
	}
	if r.bar != nil && r.bar.pb != nil && ev.Action != "conflict" && ev.Action != "error" {
		return
	}
	if r.bar != nil {
		r.bar.clear()
	}
	line := fmt.Sprintf("%-13s %s", ev.Action, ev.Path)
	if ev.To != "" {
		line += " → " + ev.To
	}
	if ev.Detail != "" {
		line += ": " + ev.Detail
	}
	fmt.Fprintln(r.out, line)
}
