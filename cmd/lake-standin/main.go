// Command lake-standin is a stand-in for Lean's `lake`, for tests only:
// there is no Lean toolchain on the build machines. It replays recorded
// transcripts of real `lake` output and misbehaves on demand. hqd never
// runs it unless HQD_LAKE_BIN names it.
//
// It answers `lake build TARGET`, `lake env lean FILE` and `lake exe NAME`
// from the project directory it runs in: .standin/scenarios.json maps a
// target (or, for `env lean`, a marker line "-- standin: NAME" in the file;
// for `exe`, the executable's name) to a scenario:
//
//	{"Proving.Basic": {"transcript": "01-clean-build"},
//	 "Standin.Hog":   {"action": "memory"}}
//
// A transcript is .standin/NAME.txt with NAME.meta.json (its streams and
// exit code), as recorded in testdata/transcripts. Actions: memory (allocate
// without bound), fork (fork without bound), loop (run forever), ignore-term
// (ignore SIGTERM, run forever), probe (try what a hostile job would, and
// report what worked: see probe.go), escape (a double-forked child leaves the
// process group and lives on), huge-line (one 10 MB line), bad-utf8, ticks (400 time-stamped lines), crash
// (SIGKILL), flood (150 MB of lines at full speed), echo-stdin (copy stdin to stdout as a JSON result). Every
// process it starts prints "standin: pid N".
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/quantapix/hqd/internal/itest/probe"
)

type scenario struct {
	Transcript string        `json:"transcript"`
	Action     string        `json:"action"`
	DelayMs    int           `json:"delayMs"` // between replayed lines; before an action
	Probe      probe.Targets `json:"probe"`   // what the probe action tries
}

type meta struct {
	Exit struct {
		Code *int `json:"code"`
	} `json:"exit"`
	Streams []string `json:"streams"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "__child" {
		child(os.Args[2:])
		return
	}
	fmt.Fprintf(os.Stderr, "standin: pid %d\n", os.Getpid())
	key, ok := scenarioKey(os.Args[1:])
	if !ok {
		fmt.Fprintf(os.Stderr, "error: lake-standin does not know %q\n", strings.Join(os.Args[1:], " "))
		os.Exit(1)
	}
	scenarios := map[string]scenario{}
	b, err := os.ReadFile(".standin/scenarios.json")
	if err == nil {
		err = json.Unmarshal(b, &scenarios)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: reading .standin/scenarios.json: %v\n", err)
		os.Exit(1)
	}
	sc, ok := scenarios[key]
	if !ok {
		fmt.Fprintf(os.Stderr, "error: unknown target `%s`\n", key)
		os.Exit(1)
	}
	if sc.Action != "" {
		// For an action, delayMs is a pause before it starts.
		time.Sleep(time.Duration(sc.DelayMs) * time.Millisecond)
		if sc.Action == "probe" {
			runProbe(sc.Probe)
			return
		}
		act(sc.Action)
		return
	}
	os.Exit(replay(sc))
}

// scenarioKey picks the scenario for a command line.
func scenarioKey(args []string) (string, bool) {
	switch {
	case len(args) == 2 && args[0] == "build":
		return args[1], true
	case len(args) >= 2 && args[0] == "exe":
		return "exe:" + args[1], true
	case len(args) >= 3 && args[0] == "env" && args[1] == "lean":
		src, err := os.ReadFile(args[len(args)-1])
		if err != nil {
			return "", false
		}
		for _, l := range strings.Split(string(src), "\n") {
			if name, ok := strings.CutPrefix(strings.TrimSpace(l), "-- standin: "); ok {
				return "lean:" + strings.TrimSpace(name), true
			}
		}
		return "lean:default", true
	}
	return "", false
}

func replay(sc scenario) int {
	var m meta
	b, err := os.ReadFile(".standin/" + sc.Transcript + ".meta.json")
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	txt, err2 := os.ReadFile(".standin/" + sc.Transcript + ".txt")
	if err != nil || err2 != nil {
		fmt.Fprintf(os.Stderr, "error: transcript %s: %v %v\n", sc.Transcript, err, err2)
		return 1
	}
	lines := strings.Split(strings.TrimSuffix(string(txt), "\n"), "\n")
	for i, l := range lines {
		w := os.Stdout
		if i < len(m.Streams) && m.Streams[i] == "stderr" {
			w = os.Stderr
		}
		fmt.Fprintln(w, l)
		if sc.DelayMs > 0 {
			time.Sleep(time.Duration(sc.DelayMs) * time.Millisecond)
		}
	}
	if m.Exit.Code == nil { // the transcript ended by a signal: stop like a killed lake
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		time.Sleep(time.Second)
	}
	return *m.Exit.Code
}

func spawn(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"__child"}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "standin: fork failed: %v\n", err)
		return nil
	}
	return cmd
}

func act(action string) {
	switch action {
	case "memory":
		var hog [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			hog = append(hog, b)
		}
	case "fork":
		for {
			if spawn("sleep") == nil {
				time.Sleep(10 * time.Millisecond) // refused: the cgroup's pids limit; keep trying
			}
		}
	case "loop":
		for {
			time.Sleep(time.Hour)
		}
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
		for {
			time.Sleep(time.Hour)
		}
	case "escape":
		cmd := spawn("escape")
		if cmd != nil {
			_ = cmd.Wait() // the middle child exits at once; its child lives on
		}
		fmt.Println("escaped child started")
		for {
			time.Sleep(time.Hour)
		}
	case "huge-line":
		w := bufio.NewWriter(os.Stdout)
		w.WriteString(strings.Repeat("x", 10<<20))
		w.WriteString("\nafter the long line\n")
		w.Flush()
	case "bad-utf8":
		os.Stdout.Write([]byte("bad \xff\xfe bytes\n"))
	case "crash":
		// Killed by a signal without a word, as lean is by the kernel.
		// (Go's runtime would turn SIGSEGV into an exit with code 2.)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Second)
	case "hello":
		// One line at once: job start-up benchmarks time its arrival.
		fmt.Println("info: hello")
	case "whoami":
		// Who the job runs as and where: the helper's work, checked by tests.
		fmt.Printf("info: uid %d gid %d groups %v\n", os.Getuid(), os.Getgid(), must(os.Getgroups()))
		if m, err := os.ReadFile("/proc/self/uid_map"); err == nil {
			fmt.Printf("info: uid_map %s\n", strings.Join(strings.Fields(string(m)), " "))
		}
		cg, _ := os.ReadFile("/proc/self/cgroup")
		for _, l := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
			fmt.Printf("info: cgroup %s\n", l)
		}
	case "hundred":
		for i := 0; i < 100; i++ {
			fmt.Printf("info: line %d\n", i)
		}
	case "ticks":
		// Lines stamped with when they were written, for latency benchmarks.
		for i := 0; i < 400; i++ {
			fmt.Printf("info: tick %d\n", time.Now().UnixNano())
			time.Sleep(5 * time.Millisecond)
		}
	case "flood":
		// 150 MB of lines as fast as they can be written: what hqd keeps
		// of a run must stay bounded, and the run must still end.
		w := bufio.NewWriterSize(os.Stdout, 1<<16)
		line := strings.Repeat("x", 90)
		for i := 0; i < 1_500_000; i++ {
			fmt.Fprintf(w, "info: %07d %s\n", i, line)
		}
		w.Flush()
	case "echo-stdin":
		in, _ := io.ReadAll(os.Stdin)
		out, _ := json.Marshal(map[string]any{"input": json.RawMessage(in)})
		fmt.Println(string(out))
	default:
		fmt.Fprintf(os.Stderr, "error: unknown action %q\n", action)
		os.Exit(1)
	}
}

// child is a process the stand-in starts.
func child(args []string) {
	fmt.Fprintf(os.Stderr, "standin: pid %d\n", os.Getpid())
	if len(args) > 0 && args[0] == "escape" {
		// Double fork: the grandchild leaves the process group (setsid)
		// and outlives this child.
		cmd := exec.Command(os.Args[0], "__child", "setsid")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		_ = cmd.Start()
		return
	}
	for {
		time.Sleep(time.Hour)
	}
}

func must[T any](v T, _ error) T { return v }
