package lake

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"
)

// Mode says what was launched, which decides how its output reads.
type Mode int

const (
	ModeBuild Mode = iota // lake build: monitor on stdout
	ModeLean              // lake env lean FILE: lean's own messages
	ModeExe               // lake exe: monitor on stderr, the program's stdout
)

// Line is one classified output line. The vocabulary is the transcripts'
// (testdata/transcripts/README.md §6); Assembler turns lines into the
// events of SPEC §6.2.
type Line struct {
	Stream string `json:"stream"`
	Stage  string `json:"stage"`
	Kind   string `json:"kind"`
	Msg    string `json:"msg"`

	Status     string `json:"status,omitempty"` // job: ok, info, warning, error, canceled
	Done       int    `json:"done,omitempty"`
	Total      int    `json:"total,omitempty"`
	Verb       string `json:"verb,omitempty"`
	Failed     bool   `json:"failed,omitempty"`
	Target     string `json:"target,omitempty"`
	DurationMs *int   `json:"duration_ms,omitempty"`
	Jobs       *int   `json:"jobs,omitempty"`

	Level    string `json:"level,omitempty"`
	Cwd      string `json:"cwd,omitempty"`
	Job      string `json:"job,omitempty"`
	Severity string `json:"severity,omitempty"`
	File     string `json:"file,omitempty"`
	LineNo   int    `json:"line"`
	Col      int    `json:"col"`
	EndLine  *int   `json:"end_line,omitempty"`
	EndCol   *int   `json:"end_col,omitempty"`
	Code     string `json:"code,omitempty"` // lean's named error

	Tool     string `json:"tool,omitempty"`
	ExitCode int    `json:"exit,omitempty"`
	Signal   string `json:"signal,omitempty"`

	JSON json.RawMessage `json:"json,omitempty"`
}

var (
	ansiRE       = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
	jobRE        = regexp.MustCompile(`^(?:([✔ℹ⚠✖⊘]) )?\[(\d+)/(\d+)\]( \(Optional\))? ([A-Z][a-z]+) (.+)$`)
	jobTimeRE    = regexp.MustCompile(` \((?:(\d+)ms|(\d+)(?:\.(\d))?s)\)$`)
	successRE    = regexp.MustCompile(`^(?:Build completed successfully(?: \((\d+) jobs?\))?|All targets up-to-date \((\d+) jobs?\)|Nothing to build)\.$`)
	failuresRE   = regexp.MustCompile(`^Some required (?:targets|builds) logged failures:$`)
	commandRE    = regexp.MustCompile(`^(\S*)> (.*)$`)
	leanExitRE   = regexp.MustCompile(`^Lean exited with code (\d+)$`)
	toolExitRE   = regexp.MustCompile(`^external command '(.+)' exited with code (\d+)$`)
	lakeDiagRE   = regexp.MustCompile(`^(.+?\.(?:lean|toml)):(\d+):(\d+)(?:-(\d+):(\d+))?: ?(.*)$`)
	leanDiagRE   = regexp.MustCompile(`^(.+?\.lean):(\d+):(\d+)(?:-(\d+):(\d+))?: (error|warning|info|information)(?:\(([^)]*)\))?: ?(.*)$`)
	jobIconState = map[string]string{"✔": "ok", "ℹ": "info", "⚠": "warning", "✖": "error", "⊘": "canceled", "": "ok"}
)

// MaxLine is the longest line kept; the rest of a longer line is cut.
const MaxLine = 64 << 10

// Classifier reads one run's output, line by line, keeping per-stream
// state: the open diagnostic or log entry whose continuation lines follow.
type Classifier struct {
	mode     Mode
	seenJob  bool
	summary  bool
	failures bool
	job      string
	open     map[string]string // stream → "diagnostic" or "log" while an entry is open
}

// NewClassifier reads the output of a run of mode.
func NewClassifier(mode Mode) *Classifier {
	return &Classifier{mode: mode, open: map[string]string{}}
}

func (c *Classifier) monitor() string {
	if c.mode == ModeExe {
		return "stderr"
	}
	return "stdout"
}

// Clean makes a raw line printable: the text after the last carriage
// return, without ANSI escapes, valid UTF-8, at most MaxLine bytes.
func Clean(raw string) string {
	if i := strings.LastIndexByte(raw, '\r'); i >= 0 {
		raw = raw[i+1:]
	}
	if strings.IndexByte(raw, 0x1b) >= 0 {
		raw = ansiRE.ReplaceAllString(raw, "")
	}
	if len(raw) > MaxLine {
		raw = raw[:MaxLine]
	}
	if !utf8.ValidString(raw) {
		raw = strings.ToValidUTF8(raw, "\uFFFD")
	}
	return raw
}

// Classify classifies one line (already cleaned) of stream.
func (c *Classifier) Classify(stream, text string) Line {
	switch {
	case c.mode == ModeLean && stream == "stdout":
		return c.lean(text)
	case c.mode == ModeExe && stream == "stdout":
		return c.program(text)
	case stream == c.monitor():
		return c.monitorLine(stream, text)
	}
	return c.otherStream(stream, text)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func optInt(s string) *int {
	if s == "" {
		return nil
	}
	n := atoi(s)
	return &n
}

// cutLevel splits "level: text" (Lake's log lines: trace, info, warning,
// error; the space is optional).
func cutLevel(text string) (level, rest string, ok bool) {
	for _, l := range [...]string{"info", "warning", "error", "trace"} {
		if r, found := strings.CutPrefix(text, l+":"); found {
			return l, strings.TrimPrefix(r, " "), true
		}
	}
	return "", "", false
}

// matchIf is re's submatches of text, tried only when maybe holds.
func matchIf(maybe bool, re *regexp.Regexp, text string) []string {
	if !maybe {
		return nil
	}
	return re.FindStringSubmatch(text)
}

func (c *Classifier) monitorLine(stream, text string) Line {
	l := Line{Stream: stream, Stage: "build", Msg: text}
	// Each pattern is tried only when a cheap look says it may match: a
	// run can print a million lines (issue 14), and the regexps' lazy
	// groups backtrack over every one.
	if m := matchIf(strings.Contains(text, "] "), jobRE, text); m != nil {
		c.open[stream] = ""
		c.seenJob = true
		l.Kind, l.Status, l.Done, l.Total, l.Verb = "job", jobIconState[m[1]], atoi(m[2]), atoi(m[3]), m[5]
		l.Failed = strings.HasSuffix(m[5], "ing")
		l.Msg = m[5] + " " + m[6]
		l.Target = m[6]
		if t := jobTimeRE.FindStringSubmatch(m[6]); t != nil {
			var ms int
			if t[1] != "" {
				ms = atoi(t[1])
			} else {
				ms = atoi(t[2])*1000 + atoi(t[3])*100
			}
			l.DurationMs = &ms
			l.Target = strings.TrimSuffix(m[6], t[0])
		}
		c.job = l.Target
		return l
	}
	if m := matchIf(strings.HasPrefix(text, "Build ") || strings.HasPrefix(text, "All ") || strings.HasPrefix(text, "Nothing "), successRE, text); m != nil {
		c.open[stream], c.summary = "", true
		l.Stage, l.Kind = "summary", "success"
		switch {
		case m[1] != "":
			l.Jobs = optInt(m[1])
		case m[2] != "":
			l.Jobs = optInt(m[2])
		case strings.HasPrefix(text, "Nothing"):
			l.Jobs = optInt("0")
		}
		return l
	}
	if failuresRE.MatchString(text) {
		c.open[stream], c.summary, c.failures = "", true, true
		l.Stage, l.Kind = "summary", "failures_header"
		return l
	}
	if c.failures && strings.HasPrefix(text, "- ") {
		l.Stage, l.Kind, l.Target, l.Msg = "summary", "failed_target", text[2:], text[2:]
		return l
	}
	if text == "error: build failed" || text == "error: top-level build failed" {
		c.open[stream] = ""
		l.Stage, l.Kind, l.Msg = "summary", "build_failed", strings.TrimPrefix(text, "error: ")
		return l
	}
	if level, rest, ok := cutLevel(text); ok {
		return c.levelLine(stream, level, rest, c.seenJob && !c.summary)
	}
	if c.open[stream] != "" {
		return c.cont(stream, text)
	}
	if c.mode == ModeExe {
		return Line{Stream: stream, Stage: "run", Kind: "output", Msg: text}
	}
	l.Stage, l.Kind = "lake", "text"
	return l
}

// levelLine is a "level: text" line: a Lake log entry.
func (c *Classifier) levelLine(stream, level, text string, inBuild bool) Line {
	l := Line{Stream: stream, Stage: "lake", Kind: "log", Msg: text, Level: level}
	if inBuild {
		l.Stage, l.Job = "build", c.job
	}
	switch m := matchIf(level == "trace", commandRE, text); {
	case m != nil:
		l.Kind, l.Cwd, l.Msg = "command", m[1], m[2]
		c.open[stream] = ""
		return l
	}
	if level == "error" {
		if m := leanExitRE.FindStringSubmatch(text); m != nil {
			l.Kind, l.Tool, l.ExitCode = "exit_code", "lean", atoi(m[1])
			l.Signal = signalName(l.ExitCode)
			c.open[stream] = ""
			return l
		}
		if m := toolExitRE.FindStringSubmatch(text); m != nil {
			l.Kind, l.Tool, l.ExitCode = "exit_code", m[1], atoi(m[2])
			l.Signal = signalName(l.ExitCode)
			c.open[stream] = ""
			return l
		}
	}
	if m := matchIf(level != "trace" && (strings.Contains(text, ".lean:") || strings.Contains(text, ".toml:")), lakeDiagRE, text); m != nil {
		l.Kind, l.Severity, l.File = "diagnostic", level, m[1]
		l.LineNo, l.Col, l.EndLine, l.EndCol, l.Msg = atoi(m[2]), atoi(m[3]), optInt(m[4]), optInt(m[5]), m[6]
		c.open[stream] = "diagnostic"
		return l
	}
	c.open[stream] = "log"
	return l
}

func (c *Classifier) cont(stream, text string) Line {
	stage := "build"
	if !c.seenJob || c.summary {
		stage = "lake"
	}
	kind := "log_cont"
	if c.open[stream] == "diagnostic" {
		kind = "diagnostic_cont"
	}
	if c.mode == ModeLean {
		stage = "lean"
	}
	return Line{Stream: stream, Stage: stage, Kind: kind, Msg: text, Job: c.job}
}

// lean classifies lean's own stdout (`lake env lean FILE`).
func (c *Classifier) lean(text string) Line {
	if m := matchIf(strings.Contains(text, ".lean:"), leanDiagRE, text); m != nil {
		sev := m[6]
		if sev == "information" {
			sev = "info"
		}
		c.open["stdout"] = "diagnostic"
		return Line{Stream: "stdout", Stage: "lean", Kind: "diagnostic", Severity: sev, File: m[1], LineNo: atoi(m[2]), Col: atoi(m[3]),
			EndLine: optInt(m[4]), EndCol: optInt(m[5]), Code: m[7], Msg: m[8]}
	}
	if c.open["stdout"] != "" {
		return c.cont("stdout", text)
	}
	return Line{Stream: "stdout", Stage: "lean", Kind: "output", Msg: text}
}

// program classifies the stdout of `lake exe`: a JSON object is a result.
func (c *Classifier) program(text string) Line {
	l := Line{Stream: "stdout", Stage: "run", Kind: "output", Msg: text}
	t := strings.TrimSpace(text)
	if strings.HasPrefix(t, "{") && json.Valid([]byte(t)) {
		l.Kind, l.JSON = "result", json.RawMessage(t)
	}
	return l
}

// otherStream is the non-monitor stream of a build (Lake's own logs and
// CLI errors) or lean's stderr.
func (c *Classifier) otherStream(stream, text string) Line {
	if text == "error: build failed" || text == "error: top-level build failed" {
		return Line{Stream: stream, Stage: "summary", Kind: "build_failed", Msg: strings.TrimPrefix(text, "error: ")}
	}
	if level, rest, ok := cutLevel(text); ok {
		c.open[stream] = "log"
		return Line{Stream: stream, Stage: "lake", Kind: "log", Level: level, Msg: rest}
	}
	if c.open[stream] != "" {
		l := c.cont(stream, text)
		l.Stage = "lake"
		return l
	}
	return Line{Stream: stream, Stage: "lake", Kind: "text", Msg: text}
}

// signalName names the signal of a 128+n exit code, "" otherwise.
func signalName(code int) string {
	if code <= 128 || code > 128+64 {
		return ""
	}
	names := map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGABRT: "SIGABRT", syscall.SIGSEGV: "SIGSEGV",
		syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGBUS: "SIGBUS", syscall.SIGILL: "SIGILL", syscall.SIGFPE: "SIGFPE"}
	if n, ok := names[syscall.Signal(code-128)]; ok {
		return n
	}
	return "signal " + strconv.Itoa(code-128)
}
