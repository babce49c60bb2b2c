package lake

import (
	"encoding/json"
	"strings"
	"testing"
)

func assemble(t *testing.T, name string, mode Mode) ([]Event, *Assembler) {
	t.Helper()
	var m meta
	b := fileLines(t, "testdata/transcripts/"+name+".meta.json")
	if err := json.Unmarshal([]byte(strings.Join(b, "\n")), &m); err != nil {
		t.Fatal(err)
	}
	var evs []Event
	a := NewAssembler(mode, func(e Event) { evs = append(evs, e) })
	for i, l := range fileLines(t, "testdata/transcripts/"+name+".txt") {
		a.Line(m.Streams[i], l)
	}
	a.Flush()
	return evs, a
}

func count(evs []Event, kind string) int {
	n := 0
	for _, e := range evs {
		if e.Kind() == kind {
			n++
		}
	}
	return n
}

func TestAssembleBuildErrors(t *testing.T) {
	evs, a := assemble(t, "03-build-errors", ModeBuild)
	errs, sorry := a.Verdict()
	if errs != 3 || !sorry {
		t.Errorf("verdict = %d errors, sorry %v; want 3 errors and a sorry", errs, sorry)
	}
	var mismatch Event
	for _, e := range evs {
		if e.Kind() == "diagnostic" && strings.HasPrefix(e["msg"].(string), "Type mismatch") {
			mismatch = e
		}
		if e["stage"] != "build" {
			t.Errorf("stage %v in a build", e["stage"])
		}
	}
	want := "Type mismatch\n  h\nhas type\n  a + b = c\nbut is expected to have type\n  b + a = c"
	if mismatch == nil || mismatch["msg"] != want || mismatch["file"] != "Proving/Lemmas.lean" || mismatch["line"] != 9 || mismatch["col"] != 2 || mismatch["severity"] != "error" {
		t.Errorf("multi-line diagnostic = %v", mismatch)
	}
	if n := count(evs, "diagnostic"); n != 4 {
		t.Errorf("%d diagnostics, want 4", n)
	}
	if n := count(evs, "progress"); n == 0 {
		t.Error("no progress events")
	}
	for _, e := range evs {
		var back map[string]any
		if err := json.Unmarshal(e.JSON(), &back); err != nil || back["at"] == "" || strings.Contains(string(e.JSON()), "\n") {
			t.Errorf("event JSON %s", e.JSON())
		}
	}
}

func TestAssembleVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  Mode
		errs  int
		sorry bool
	}{
		{"01-clean-build", ModeBuild, 0, false},
		{"02-build-warnings-sorry", ModeBuild, 0, true},
		{"05-env-lean-errors", ModeLean, 2, true},
		{"09-lean-oom-killed", ModeBuild, 0, true},
	} {
		evs, a := assemble(t, tc.name, tc.mode)
		errs, sorry := a.Verdict()
		if errs != tc.errs || sorry != tc.sorry {
			t.Errorf("%s: %d errors, sorry %v; want %d, %v", tc.name, errs, sorry, tc.errs, tc.sorry)
		}
		if tc.mode == ModeLean {
			for _, e := range evs {
				if e["stage"] != "check" {
					t.Errorf("%s: stage %v", tc.name, e["stage"])
				}
			}
		}
	}
	evs, _ := assemble(t, "06-exe-json-result", ModeExe)
	if n := count(evs, "result"); n != 1 {
		t.Errorf("exe: %d results", n)
	}
}

// TestDone: every done event has SPEC §6.2's seven fields, exitCode null
// when no process ran, and a recorded one reads back as it was.
func TestDone(t *testing.T) {
	code := 137
	for _, d := range []Done{
		{Msg: "killed: memory limit", ExitCode: &code, DurationMs: 1500, Limit: "memory"},
		{Msg: "cancelled", Cancelled: true, DurationMs: 3},
		{Msg: "verified", OK: true, Verified: true, Cached: true},
	} {
		b := d.Event().JSON()
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"stage", "kind", "msg", "at", "ok", "verified", "exitCode", "durationMs", "cached", "cancelled", "limit"} {
			if _, ok := ev[k]; !ok {
				t.Errorf("%s lacks %q", b, k)
			}
		}
		if d.ExitCode == nil && ev["exitCode"] != nil {
			t.Errorf("%s: exitCode should be null", b)
		}
		back := DoneOf(ev)
		if back.Msg != d.Msg || back.OK != d.OK || back.Verified != d.Verified || back.Cached != d.Cached || back.Cancelled != d.Cancelled ||
			back.Limit != d.Limit || back.DurationMs != d.DurationMs || (back.ExitCode == nil) != (d.ExitCode == nil) || (d.ExitCode != nil && *back.ExitCode != *d.ExitCode) {
			t.Errorf("DoneOf(%s) = %+v, want %+v", b, back, d)
		}
	}
}

// TestRelative: what a run prints names the project's files relative to it
// and a check's file as Source.lean — never the host's directories.
func TestRelative(t *testing.T) {
	for _, tc := range []struct{ file, msg, want, wantMsg string }{
		{"/srv/lake/proving/Proving/Basic.lean", "error: /srv/lake/proving/Proving/Basic.lean:3:4: unknown identifier", "Proving/Basic.lean", "error: Proving/Basic.lean:3:4: unknown identifier"},
		{"/job/Source.lean", "/job/Source.lean:1:0: error: x", "Source.lean", "Source.lean:1:0: error: x"},
		{"/var/lib/hqd/runs/run-123/Source.lean", "in /var/lib/hqd/runs/run-123/Source.lean", "Source.lean", "in Source.lean"},
		{"Proving/Basic.lean", "✔ [3/5] Built Proving.Basic", "Proving/Basic.lean", "✔ [3/5] Built Proving.Basic"},
	} {
		ev := Event{"file": tc.file, "msg": tc.msg}
		ev.Relative("/srv/lake/proving")
		if ev["file"] != tc.want || ev["msg"] != tc.wantMsg {
			t.Errorf("Relative(%q, %q) = %q, %q", tc.file, tc.msg, ev["file"], ev["msg"])
		}
	}
}
