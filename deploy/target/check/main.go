// Command hqd-target-check runs inside make test-target's VM (see
// deploy/target) as a oneshot unit ordered after hqd.service. It checks hqd
// under its shipped unit — over loopback HTTPS, through systemctl and
// journalctl, and by reading /proc and the cgroup file system — and writes
// one JSON report, framed by marker lines, to the serial console, where
// the test on the host reads it. The VM powers off when it exits.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// The report's frame on the console; deploy/target's test looks for these.
const (
	beginMarker = "=== hqd-target-check report begin ==="
	endMarker   = "=== hqd-target-check report end ==="
)

// Result is one check's outcome.
type Result struct {
	Name    string  `json:"name"`
	OK      bool    `json:"ok"`
	Skipped bool    `json:"skipped,omitempty"`
	Detail  string  `json:"detail"`
	Seconds float64 `json:"seconds"`
}

// Report is what the VM sends back.
type Report struct {
	Arch    string   `json:"arch"`
	Kernel  string   `json:"kernel"`
	Checks  []Result `json:"checks"`
	Analyze string   `json:"analyze"`
	// Journal is the end of the boot's journal, sent when a check failed.
	Journal string `json:"journal,omitempty"`
}

// check is one named, independent check: it returns a detail worth
// reading whether it passes or not, and an error when it fails.
type check struct {
	name string
	run  func(ctx context.Context, v *vm) (string, error)
}

// checks run in this order: the later ones stop, kill and restart hqd.
// Each starts with hqd running (see ensureUp).
var checks = []check{
	{"unit-active", unitActive},
	{"readyz-cgroup2", readyzCgroup2},
	{"files-roundtrip", filesRoundtrip},
	{"limit-memory", limit("Standin.Hog", "memory")},
	{"limit-pids", limit("Standin.Fork", "pids")},
	{"limit-timeout", limit("Standin.Loop", "timeout")},
	{"limit-escape", limit("Standin.Escape", "timeout")},
	{"sandbox-probes", probeSandbox},
	{"reload-keeps-connections", reloadKeepsConnections},
	{"crash-restart-sweep", crashRestartSweep},
	{"stop-with-streams", stopWithStreams},
	{"journal-json", journalJSON},
	{"analyze", analyze},
}

// errSkip marks a check that did not apply; the test reports it skipped.
type errSkip struct{ why string }

func (e errSkip) Error() string { return e.why }

func main() {
	console := flag.String("console", "/dev/ttyS0", "where the report goes (the serial console)")
	base := flag.String("url", "https://127.0.0.1:8080", "hqd's public listener")
	ca := flag.String("ca", "/etc/hqd/tls/cert.pem", "the certificate hqd serves, trusted as its own root")
	unit := flag.String("unit", "hqd.service", "hqd's unit")
	lake := flag.String("lake", "/opt/lake/bin/lake", "the stand-in lake hqd runs")
	perCheck := flag.Duration("check-timeout", 3*time.Minute, "the longest one check may take")
	flag.Parse()

	v, setupErr := newVM(*base, *ca, *unit, *lake)
	rep := Report{Arch: runtime.GOARCH, Kernel: kernel()}
	for _, c := range checks {
		start := time.Now()
		detail, err := "", setupErr
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), *perCheck)
			detail, err = runCheck(ctx, v, c)
			cancel()
		}
		r := Result{Name: c.name, OK: err == nil, Detail: detail, Seconds: time.Since(start).Seconds()}
		if se := (errSkip{}); errors.As(err, &se) {
			r.OK, r.Skipped = true, true
		}
		if err != nil {
			r.Detail = strings.TrimSpace(err.Error() + "\n" + detail)
		}
		fmt.Printf("check %s: ok=%v %.1fs: %s\n", r.Name, r.OK, r.Seconds, r.Detail)
		rep.Checks = append(rep.Checks, r)
	}
	if v != nil {
		rep.Analyze = v.analyzed
	}
	for _, r := range rep.Checks {
		if !r.OK {
			rep.Journal = output(context.Background(), "journalctl", "-b", "--no-pager", "-o", "short-monotonic", "-n", "400")
			break
		}
	}
	b, _ := json.Marshal(rep)
	msg := "\n" + beginMarker + "\n" + string(b) + "\n" + endMarker + "\n"
	f, err := os.OpenFile(*console, os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hqd-target-check: %v\n", err)
		os.Exit(1)
	}
	_, err = f.WriteString(msg)
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hqd-target-check: writing the report: %v\n", err)
		os.Exit(1)
	}
}

// runCheck starts hqd if an earlier check left it down, then runs c.
func runCheck(ctx context.Context, v *vm, c check) (string, error) {
	var note string
	if c.name != "journal-json" && c.name != "analyze" {
		restarted, err := v.ensureUp(ctx)
		if err != nil {
			return "", fmt.Errorf("hqd is not up before the check: %w", err)
		}
		if restarted {
			note = " (hqd was down after the previous check: started it again first)"
		}
	}
	detail, err := c.run(ctx, v)
	return detail + note, err
}

// vm is the checker's view of the machine and of hqd.
type vm struct {
	base     string
	host     string
	tls      *tls.Config
	client   *http.Client
	unit     string
	lake     string
	clientID string
	analyzed string // systemd-analyze security's output, for the report
}

func newVM(base, caFile, unit, lake string) (*vm, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading hqd's certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	conf := &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}}
	// HTTP/1.1 only: hqd's event streams take their connection over there
	// (the path browsers' EventSource takes through a proxy, and the one
	// with most to go wrong on shutdown).
	tr := &http.Transport{TLSClientConfig: conf, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	return &vm{base: base, host: strings.TrimPrefix(base, "https://"), tls: conf, client: &http.Client{Transport: tr}, unit: unit, lake: lake}, nil
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// output runs a command and returns its combined output, errors included.
func output(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out) + "\n(" + err.Error() + ")"
	}
	return string(out)
}

// command runs a command and fails with its output.
func command(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// show reads unit properties through systemctl show.
func (v *vm) show(ctx context.Context, props ...string) (map[string]string, error) {
	out, err := command(ctx, "systemctl", "show", "--property="+strings.Join(props, ","), v.unit)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, val, ok := strings.Cut(l, "="); ok {
			m[k] = val
		}
	}
	return m, nil
}

// ensureUp starts hqd when it is not active and waits until it is ready.
func (v *vm) ensureUp(ctx context.Context) (restarted bool, err error) {
	p, err := v.show(ctx, "ActiveState")
	if err != nil {
		return false, err
	}
	if p["ActiveState"] != "active" {
		restarted = true
		if _, err := command(ctx, "systemctl", "start", v.unit); err != nil {
			return true, err
		}
	}
	return restarted, v.waitReady(ctx, 90*time.Second)
}

// waitReady polls /readyz until it answers 200.
func (v *vm) waitReady(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last string
	for {
		status, body, err := v.do(ctx, "GET", "/readyz", "", nil)
		if err == nil && status == 200 {
			return nil
		}
		last = fmt.Sprintf("%d %s %v", status, body, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("/readyz not 200 within %s: %s", within, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
