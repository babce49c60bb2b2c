package lake

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type meta struct {
	Mode    string   `json:"mode"`
	Streams []string `json:"streams"`
}

// TestClassifyTranscripts checks every line of the recorded transcripts
// against its expected classification.
func TestClassifyTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/transcripts/*.txt")
	if len(files) < 8 {
		t.Fatalf("found %d transcripts", len(files))
	}
	for _, txt := range files {
		name := strings.TrimSuffix(filepath.Base(txt), ".txt")
		t.Run(name, func(t *testing.T) {
			var m meta
			b, err := os.ReadFile(strings.TrimSuffix(txt, ".txt") + ".meta.json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			mode := map[string]Mode{"build": ModeBuild, "lean": ModeLean, "exe": ModeExe}[m.Mode]
			lines := fileLines(t, txt)
			expected := fileLines(t, strings.TrimSuffix(txt, ".txt")+".expected.jsonl")
			if len(lines) != len(expected) || len(lines) != len(m.Streams) {
				t.Fatalf("%d lines, %d expectations, %d streams", len(lines), len(expected), len(m.Streams))
			}
			c := NewClassifier(mode)
			for i, text := range lines {
				got := c.Classify(m.Streams[i], Clean(text))
				var want map[string]any
				if err := json.Unmarshal([]byte(expected[i]), &want); err != nil {
					t.Fatal(err)
				}
				gb, _ := json.Marshal(got)
				var g map[string]any
				_ = json.Unmarshal(gb, &g)
				for _, k := range []string{"stage", "kind", "msg", "status", "done", "total", "verb", "target", "duration_ms", "jobs",
					"level", "cwd", "severity", "file", "line", "col", "code", "tool", "signal"} {
					wv, ok := want[k]
					if !ok || wv == nil || wv == false || wv == "" {
						continue
					}
					if k == "code" && want["kind"] == "exit_code" {
						if float64(got.ExitCode) != wv {
							t.Errorf("line %d %q: exit code %d, want %v", i+1, text, got.ExitCode, wv)
						}
						continue
					}
					if gv := g[k]; gv != wv {
						t.Errorf("line %d %q: %s = %v, want %v", i+1, text, k, gv, wv)
					}
				}
			}
		})
	}
}

func fileLines(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"\x1b[2K\r⣾ [12/345] Running X":  "⣾ [12/345] Running X",
		"\x1b[1;33mwarning:\x1b[m msg":   "warning: msg",
		"bad \xff\xfe utf8":              "bad \uFFFD utf8",
		strings.Repeat("x", MaxLine+100): strings.Repeat("x", MaxLine),
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%.40q) = %.40q, want %.40q", in, got, want)
		}
	}
}
