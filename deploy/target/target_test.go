// Package target rehearses hqd on a machine like its EC2 host (issue 15):
// Debian's Linux 6.1 cloud kernel, systemd and cgroup v2, emulated by QEMU
// (no KVM here), x86-64 or arm64. TestTarget builds a root file system
// once (prepare.sh, cached under ~/.cache/hqd/target), installs hqd into
// it with deploy/systemd/install.sh plus one drop-in of test settings,
// boots it, and reports the checks hqd-target-check (./check) ran inside.
//
//	make test-target            # x86-64, part of make test
//	make test-target ARCH=arm64 # arm64, on its own
package target

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// checks are the names the report must hold, in its order (check/main.go).
var checks = []string{
	"unit-active", "readyz-cgroup2", "files-roundtrip",
	"limit-memory", "limit-pids", "limit-timeout", "limit-escape",
	"sandbox-probes", "reload-keeps-connections", "crash-restart-sweep", "stop-with-streams",
	"journal-json", "analyze",
}

// The report's frame on the console (check/main.go).
const (
	beginMarker = "=== hqd-target-check report begin ==="
	endMarker   = "=== hqd-target-check report end ==="
)

type result struct {
	Name    string  `json:"name"`
	OK      bool    `json:"ok"`
	Skipped bool    `json:"skipped"`
	Detail  string  `json:"detail"`
	Seconds float64 `json:"seconds"`
}

type report struct {
	Arch    string   `json:"arch"`
	Kernel  string   `json:"kernel"`
	Checks  []result `json:"checks"`
	Analyze string   `json:"analyze"`
	Journal string   `json:"journal"`
}

func TestTarget(t *testing.T) {
	if os.Getenv("HQD_TARGET") != "1" {
		t.Skip("set HQD_TARGET=1 or run make test-target")
	}
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Fatal("make test-target runs on Linux as root: it installs its tools with apt and builds a root file system")
	}
	arch := os.Getenv("HQD_TARGET_ARCH")
	if arch == "" {
		arch = "amd64"
	}
	m, ok := machines[arch]
	if !ok {
		t.Fatalf("HQD_TARGET_ARCH=%s: want amd64 or arm64", arch)
	}
	if d := os.Getenv("HQD_TARGET_TIMEOUT"); d != "" {
		var err error
		if m.timeout, err = time.ParseDuration(d); err != nil {
			t.Fatalf("HQD_TARGET_TIMEOUT: %v", err)
		}
	}
	start := time.Now()
	in := prepare(t, arch)
	prepared := time.Now()
	bins := build(t, arch)
	built := time.Now()
	initrd := assemble(t, m, in, bins)
	assembled := time.Now()

	// Kept after the test, replaced by the next run.
	out := filepath.Join(cacheDir(), arch, "last-run")
	_ = os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(out, "serial.log")
	t.Logf("booting the %s VM (at most %s); its console goes to %s", arch, m.timeout, logPath)
	serial, bootErr := boot(m, in.kernel, initrd, logPath)
	booted := time.Now()
	t.Logf("times: prepare %s, build %s, assemble %s, VM %s, in all %s",
		prepared.Sub(start).Round(time.Second), built.Sub(prepared).Round(time.Second), assembled.Sub(built).Round(time.Second),
		booted.Sub(assembled).Round(time.Second), booted.Sub(start).Round(time.Second))

	rep, err := parseReport(serial)
	if err != nil {
		t.Fatalf("%v (VM: %v)\nthe console is in %s; its end:\n%s", err, bootErr, logPath, tail(serial, 60))
	}
	if b, err := json.MarshalIndent(rep, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(out, "report.json"), b, 0o644)
	}
	t.Logf("%s VM, kernel %s:", rep.Arch, rep.Kernel)
	for _, r := range rep.Checks {
		verdict := map[bool]string{true: "ok  ", false: "FAIL"}[r.OK]
		if r.Skipped {
			verdict = "skip"
		}
		t.Logf("  %s %-26s %5.1fs  %s", verdict, r.Name, r.Seconds, r.Detail)
	}
	t.Logf("systemd-analyze security hqd.service:\n%s", rep.Analyze)
	if rep.Arch != arch {
		t.Errorf("the checker ran as %s, want %s", rep.Arch, arch)
	}

	byName := map[string]result{}
	for _, r := range rep.Checks {
		byName[r.Name] = r
	}
	failed := false
	for _, name := range checks {
		r, found := byName[name]
		ok := t.Run(name, func(t *testing.T) {
			switch {
			case !found:
				t.Fatal("missing from the report")
			case r.Skipped:
				t.Skip(r.Detail)
			case !r.OK:
				t.Error(r.Detail)
			}
		})
		failed = failed || !ok
	}
	for _, r := range rep.Checks {
		if !contains(checks, r.Name) {
			t.Errorf("the report has a check this test does not know: %s", r.Name)
		}
	}
	if failed {
		t.Logf("the console is in %s; the end of the VM's journal:\n%s", logPath, rep.Journal)
	}
}

// parseReport finds the report between its markers on the console.
func parseReport(serial string) (*report, error) {
	serial = strings.ReplaceAll(serial, "\r", "")
	i := strings.LastIndex(serial, beginMarker+"\n")
	if i < 0 {
		return nil, fmt.Errorf("the VM sent no report")
	}
	body := serial[i+len(beginMarker)+1:]
	j := strings.Index(body, "\n"+endMarker)
	if j < 0 {
		return nil, fmt.Errorf("the VM's report is cut short")
	}
	var rep report
	if err := json.Unmarshal([]byte(body[:j]), &rep); err != nil {
		return nil, fmt.Errorf("the VM's report: %v", err)
	}
	return &rep, nil
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
