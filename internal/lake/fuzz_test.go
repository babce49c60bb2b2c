package lake

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzClassify: no output of a job makes the classifier or the assembler
// panic, and no event carries invalid UTF-8 or a line over the cap.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"✔ [2/10] Built X (1.2s)", "error: F.lean:1:2: bad\n  more", "\xff\xfe", "- x", "info: stdout:\n{", strings.Repeat("a", 70000)} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, out string, mode uint8) {
		a := NewAssembler(Mode(mode%3), func(e Event) {
			msg, _ := e["msg"].(string)
			if !utf8.ValidString(msg) {
				t.Fatalf("event with invalid UTF-8: %q", msg)
			}
			if len(e.JSON()) == 0 {
				t.Fatal("event without JSON")
			}
		})
		for i, l := range strings.Split(out, "\n") {
			stream := "stdout"
			if i%2 == 1 {
				stream = "stderr"
			}
			a.Line(stream, l)
		}
		a.Flush()
	})
}

// FuzzReadLines: whatever a child prints, no line passed on is longer
// than the cap (plus its marker), and nothing is lost before the cap.
func FuzzReadLines(f *testing.F) {
	f.Add([]byte("a\nb\n"))
	f.Add(bytes.Repeat([]byte("x"), 200000))
	f.Add([]byte("\n\n\xff\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		readLines(bytes.NewReader(in), func(s string) {
			if len(s) > MaxLine+len(" …(line cut)") {
				t.Fatalf("line of %d bytes", len(s))
			}
		})
	})
}
