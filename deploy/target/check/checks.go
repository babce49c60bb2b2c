package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// unitActive: hqd.service is active and running under Type=notify, which
// systemd reaches only on the daemon's READY=1.
func unitActive(ctx context.Context, v *vm) (string, error) {
	p, err := v.show(ctx, "Type", "NotifyAccess", "ActiveState", "SubState", "Result", "MainPID", "StatusErrno",
		"ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic", "ControlGroup", "Delegate", "DelegateControllers", "User")
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("Type=%s NotifyAccess=%s %s/%s Result=%s MainPID=%s User=%s StatusErrno=%s ControlGroup=%s Delegate=%s (%s)",
		p["Type"], p["NotifyAccess"], p["ActiveState"], p["SubState"], p["Result"], p["MainPID"], p["User"], p["StatusErrno"],
		p["ControlGroup"], p["Delegate"], p["DelegateControllers"])
	var bad []string
	for k, want := range map[string]string{"Type": "notify", "ActiveState": "active", "SubState": "running", "Result": "success"} {
		if p[k] != want {
			bad = append(bad, fmt.Sprintf("%s=%s, want %s", k, p[k], want))
		}
	}
	if p["MainPID"] == "0" || p["MainPID"] == "" {
		bad = append(bad, "no MainPID")
	} else if uid := procUID(p["MainPID"]); uid == "0" {
		bad = append(bad, "hqd runs as root")
	}
	// Type=notify: active only after READY=1 (a daemon that never sends it
	// times out as failed), so the gap from exec to active is its start-up.
	if a, b := atoi(p["ActiveEnterTimestampMonotonic"]), atoi(p["ExecMainStartTimestampMonotonic"]); a > 0 && b > 0 {
		detail += fmt.Sprintf("; READY=1 %s after exec", time.Duration(a-b)*time.Microsecond)
	}
	// Port 80 through the unit's CAP_NET_BIND_SERVICE (the drop-in puts the
	// redirect listener on 127.0.0.1:80): it answers with a redirect.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if req, err := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:80/healthz", nil); err == nil {
		if resp, err := noRedirect.Do(req); err != nil {
			bad = append(bad, "port 80 (CAP_NET_BIND_SERVICE): "+err.Error())
		} else {
			resp.Body.Close()
			detail += fmt.Sprintf("; port 80 answers %d → %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if len(bad) > 0 {
		return detail, errors.New(strings.Join(bad, "; "))
	}
	return detail, nil
}

// readyzCgroup2: /readyz says jobs are confined by cgroup v2.
func readyzCgroup2(ctx context.Context, v *vm) (string, error) {
	status, body, err := v.do(ctx, "GET", "/readyz", "", nil)
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("%d %s", status, bytes.TrimSpace(body))
	var r struct {
		Status string
		Checks map[string]struct {
			OK        bool
			Detail    string
			Isolation string
		}
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return detail, fmt.Errorf("/readyz is not JSON: %w", err)
	}
	if status != 200 {
		return detail, fmt.Errorf("/readyz = %d", status)
	}
	if iso := r.Checks["jobs"].Isolation; iso != "cgroup2" {
		return detail, fmt.Errorf("/readyz names job isolation %q, want cgroup2", iso)
	}
	if !r.Checks["jobs"].OK {
		return detail, errors.New("/readyz: jobs are not available")
	}
	return detail, nil
}

// filesRoundtrip: two users; one's binary file comes back byte-exact, is
// listed, is invisible to the other, and is deleted.
func filesRoundtrip(ctx context.Context, v *vm) (string, error) {
	alice, err := v.signIn(ctx, "alice@example.com")
	if err != nil {
		return "", err
	}
	bob, err := v.signIn(ctx, "bob@example.com")
	if err != nil {
		return "", err
	}
	blob := make([]byte, 300<<10)
	_, _ = rand.Read(blob)
	const path = "/api/files/target/blob.bin"
	if s, b, err := v.do(ctx, "PUT", path+"?raw=1", alice, blob, "Content-Type", "application/octet-stream"); err != nil || s != 200 {
		return "", fmt.Errorf("PUT = %d %s %v", s, b, err)
	}
	s, got, err := v.do(ctx, "GET", path+"?raw=1", alice, nil)
	if err != nil || s != 200 || !bytes.Equal(got, blob) {
		return "", fmt.Errorf("GET raw = %d, %d bytes (want %d, equal %v) %v", s, len(got), len(blob), bytes.Equal(got, blob), err)
	}
	s, list, err := v.do(ctx, "GET", "/api/files?prefix=target/", alice, nil)
	if err != nil || s != 200 || !bytes.Contains(list, []byte(`"path":"target/blob.bin"`)) {
		return "", fmt.Errorf("list = %d %s %v", s, list, err)
	}
	if s, b, err := v.do(ctx, "GET", path+"?raw=1", bob, nil); err != nil || s != 404 {
		return "", fmt.Errorf("the other user's GET = %d %s %v, want 404", s, b, err)
	}
	if s, b, err := v.do(ctx, "DELETE", path, alice, nil); err != nil || s != 204 {
		return "", fmt.Errorf("DELETE = %d %s %v", s, b, err)
	}
	if s, _, err := v.do(ctx, "GET", path+"?raw=1", alice, nil); err != nil || s != 404 {
		return "", fmt.Errorf("GET after DELETE = %d %v, want 404", s, err)
	}
	return fmt.Sprintf("%d random bytes PUT raw, read back byte-exact, listed, 404 to another user, deleted", len(blob)), nil
}

// limit: a job of target ends with done.limit = want, and no process or
// run cgroup of it is left a few seconds later.
func limit(target, want string) func(context.Context, *vm) (string, error) {
	return func(ctx context.Context, v *vm) (string, error) {
		tok, err := v.signIn(ctx, "limits@example.com")
		if err != nil {
			return "", err
		}
		start := time.Now()
		st, err := v.startJob(ctx, tok, target)
		if err != nil {
			return "", err
		}
		defer st.cancel()
		evs, ok := st.until(ctx, func(e event) bool { return e.Type == "done" })
		if !ok {
			return fmt.Sprintf("%d events: %s", len(evs), lastMsgs(evs)), errors.New("the stream ended without a done event")
		}
		done := evs[len(evs)-1].Data
		detail := fmt.Sprintf("%s: done %s after %.1fs; the stand-in's pids as it saw them %v", target, compact(done), time.Since(start).Seconds(), pids(evs))
		if got, _ := done["limit"].(string); got != want {
			return detail + "; " + lastMsgs(evs), fmt.Errorf("done.limit = %q, want %q", got, want)
		}
		left, took := waitClean(ctx, v.lake, 5*time.Second)
		if left != "" {
			return detail, fmt.Errorf("%s after done, still there: %s", 5*time.Second, left)
		}
		return detail + fmt.Sprintf("; nothing left %s after done", took.Round(time.Millisecond)), nil
	}
}

// reloadKeepsConnections: systemctl reload (SIGHUP) keeps an idle
// keep-alive connection and a job's open event stream, and the same
// process serves on.
func reloadKeepsConnections(ctx context.Context, v *vm) (string, error) {
	tok, err := v.signIn(ctx, "reload@example.com")
	if err != nil {
		return "", err
	}
	before, err := v.show(ctx, "MainPID", "NRestarts")
	if err != nil {
		return "", err
	}
	conn, err := tls.Dial("tcp", v.host, v.tls)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	get := func() error {
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+v.host+"\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			return fmt.Errorf("GET /healthz = %d (close %v)", resp.StatusCode, resp.Close)
		}
		return nil
	}
	if err := get(); err != nil {
		return "", fmt.Errorf("before the reload: %w", err)
	}
	st, err := v.startJob(ctx, tok, "Standin.Loop")
	if err != nil {
		return "", err
	}
	defer st.cancel()
	if _, ok := st.until(ctx, func(e event) bool { return strings.Contains(e.msg(), "standin: pid") }); !ok {
		return "", errors.New("the job never started")
	}
	reloaded := time.Now()
	if _, err := command(ctx, "systemctl", "reload", v.unit); err != nil {
		return "", err
	}
	time.Sleep(time.Second) // SIGHUP handled, or fatal by now
	var bad []string
	if err := get(); err != nil {
		bad = append(bad, "the keep-alive connection after the reload: "+err.Error())
	}
	after, err := v.show(ctx, "MainPID", "NRestarts", "ActiveState")
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("MainPID %s → %s, NRestarts %s → %s, %s", before["MainPID"], after["MainPID"], before["NRestarts"], after["NRestarts"], after["ActiveState"])
	if after["MainPID"] != before["MainPID"] || after["NRestarts"] != before["NRestarts"] {
		bad = append(bad, "hqd did not survive the reload")
	}
	evs, ok := st.until(ctx, func(e event) bool { return e.Type == "done" })
	if !ok {
		bad = append(bad, "the event stream ended without done: "+lastMsgs(evs))
	} else {
		detail += fmt.Sprintf("; the stream open across the reload got done %s %s later", compact(evs[len(evs)-1].Data), time.Since(reloaded).Round(time.Millisecond))
	}
	if len(bad) > 0 {
		return detail, errors.New(strings.Join(bad, "; "))
	}
	return "the same keep-alive connection served before and after; " + detail, nil
}

// crashRestartSweep: kill -9 of hqd during a job (whose child escaped to
// its own session): systemd restarts hqd, and the dead daemon's job
// processes and run cgroups are gone.
func crashRestartSweep(ctx context.Context, v *vm) (string, error) {
	tok, err := v.signIn(ctx, "crash@example.com")
	if err != nil {
		return "", err
	}
	before, err := v.show(ctx, "MainPID", "NRestarts")
	if err != nil {
		return "", err
	}
	st, err := v.startJob(ctx, tok, "Standin.Escape")
	if err != nil {
		return "", err
	}
	defer st.cancel()
	// The stand-in, its middle child and the escaped grandchild.
	seen, escaped := 0, false
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	evs, _ := st.until(wait, func(e event) bool {
		seen += len(pids([]event{e}))
		escaped = escaped || strings.Contains(e.msg(), "escaped child started")
		return seen >= 3 && escaped
	})
	cancel()
	// The job's processes as the host sees them (in the job's own PID
	// namespace, the pids it printed are not the host's).
	var procs []int
	var cgroups []string
	for _, p := range lakeProcs(v.lake) {
		procs = append(procs, p.pid)
		if p.cgroup != "" && !contains(cgroups, p.cgroup) {
			cgroups = append(cgroups, p.cgroup)
		}
	}
	alive := alivePids(procs)
	if len(alive) < 2 {
		return fmt.Sprintf("events: %s; the stand-in's processes on the host: %v", lastMsgs(evs), alive),
			errors.New("the job's processes (the stand-in and its escaped child) were not running to be left behind")
	}
	killed := time.Now()
	if _, err := command(ctx, "systemctl", "kill", "--signal=KILL", "--kill-who=main", v.unit); err != nil {
		return "", err
	}
	// What is left of the dead daemon's job, "" when nothing.
	left := func() string {
		var bad []string
		if a := alivePids(procs); len(a) > 0 {
			bad = append(bad, fmt.Sprintf("processes %v of the dead daemon's job still run", a))
		}
		for _, cg := range cgroups {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", cg)); err == nil {
				bad = append(bad, "its cgroup "+cg+" is still there")
			}
		}
		if l := leftovers(v.lake); l != "" {
			bad = append(bad, "left: "+l)
		}
		return strings.Join(bad, "; ")
	}
	var after map[string]string
	var restarted, clean time.Duration
	for restarted == 0 || clean == 0 {
		if clean == 0 && left() == "" {
			clean = time.Since(killed)
		}
		if restarted == 0 {
			if after, err = v.show(ctx, "MainPID", "NRestarts", "ActiveState"); err != nil {
				return "", err
			}
			if after["ActiveState"] == "active" && after["MainPID"] != before["MainPID"] && after["MainPID"] != "0" {
				restarted = time.Since(killed)
			}
		}
		switch {
		case restarted == 0 && time.Since(killed) > 60*time.Second:
			return compact(after), errors.New("systemd did not restart hqd within 60 s")
		case restarted > 0 && clean == 0 && time.Since(killed) > restarted+5*time.Second:
			return "", fmt.Errorf("%s after the restart: %s", 5*time.Second, left())
		}
		time.Sleep(100 * time.Millisecond)
	}
	detail := fmt.Sprintf("job processes %v in %v; MainPID %s killed, %s active %s later (NRestarts %s → %s)",
		alive, cgroups, before["MainPID"], after["MainPID"], restarted.Round(time.Millisecond), before["NRestarts"], after["NRestarts"])
	return detail + fmt.Sprintf("; the job's processes, cgroups and unit all gone %s after the kill", clean.Round(time.Millisecond)), nil
}

// stopWithStreams: systemctl stop with three jobs' event streams open:
// each gets its final event before it closes, the stop takes at most 2 s,
// and the unit ends inactive, not failed. hqd is started again after.
func stopWithStreams(ctx context.Context, v *vm) (string, error) {
	tok, err := v.signIn(ctx, "streams@example.com")
	if err != nil {
		return "", err
	}
	var streams []*stream
	for range 3 {
		st, err := v.startJob(ctx, tok, "Standin.Loop")
		if err != nil {
			return "", err
		}
		defer st.cancel()
		<-st.opened
		streams = append(streams, st)
	}
	// Two run (HQD_JOBS_MAX_RUNNING), one waits: both kinds of stream.
	var states []string
	for _, st := range streams {
		evs, _ := st.until(ctx, func(e event) bool { return e.Type != "" })
		if len(evs) > 0 {
			states = append(states, evs[0].Type+":"+evs[0].msg())
		}
	}
	stopping := time.Now()
	_, stopErr := command(ctx, "systemctl", "stop", v.unit)
	wall := time.Since(stopping)
	p, err := v.show(ctx, "ActiveState", "Result", "ExecMainCode", "ExecMainStatus", "ActiveExitTimestampMonotonic", "InactiveEnterTimestampMonotonic")
	if err != nil {
		return "", err
	}
	took := time.Duration(atoi(p["InactiveEnterTimestampMonotonic"])-atoi(p["ActiveExitTimestampMonotonic"])) * time.Microsecond
	detail := fmt.Sprintf("first events %q; stop took %s (systemctl returned after %s); %s Result=%s exit status %s",
		states, took.Round(time.Millisecond), wall.Round(time.Millisecond), p["ActiveState"], p["Result"], p["ExecMainStatus"])
	var bad []string
	if stopErr != nil {
		bad = append(bad, stopErr.Error())
	}
	if took > 2*time.Second || took <= 0 {
		bad = append(bad, fmt.Sprintf("the stop took %s, want at most %s", took, 2*time.Second))
	}
	if p["ActiveState"] != "inactive" || p["Result"] != "success" {
		bad = append(bad, fmt.Sprintf("the unit ended %s (Result=%s), want inactive (success)", p["ActiveState"], p["Result"]))
	}
	for i, st := range streams {
		evs, closedAt, err := st.rest(ctx)
		last := "nothing"
		if len(evs) > 0 {
			last = evs[len(evs)-1].Type
		}
		detail += fmt.Sprintf("; stream %d: last event %s, closed %s after the stop began", i+1, last, closedAt.Sub(stopping).Round(time.Millisecond))
		if last != "shutdown" && last != "done" {
			bad = append(bad, fmt.Sprintf("stream %d ended with %s, not shutdown or done", i+1, last))
		}
		if closedAt.IsZero() || closedAt.Sub(stopping) > 2*time.Second {
			bad = append(bad, fmt.Sprintf("stream %d closed %s after the stop began (%v)", i+1, closedAt.Sub(stopping), err))
		}
	}
	if _, err := command(ctx, "systemctl", "start", v.unit); err != nil {
		bad = append(bad, "starting hqd again: "+err.Error())
	} else if err := v.waitReady(ctx, 90*time.Second); err != nil {
		bad = append(bad, "after starting hqd again: "+err.Error())
	}
	if len(bad) > 0 {
		return detail, errors.New(strings.Join(bad, "; "))
	}
	return detail, nil
}

// journalJSON: every line hqd wrote to the journal (stdout and stderr,
// not systemd's own lines about the unit) is a JSON object, but for the
// banner hqd dev prints on stderr (dev only: hqd serve prints none).
func journalJSON(ctx context.Context, v *vm) (string, error) {
	out, err := command(ctx, "journalctl", "-b", "-u", v.unit, "-o", "json", "--no-pager")
	if err != nil {
		return "", err
	}
	var msgs []string
	processes := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			return "", fmt.Errorf("journalctl -o json: %w: %.200s", err, l)
		}
		if e["_TRANSPORT"] == "stdout" { // not systemd's own lines about the unit
			msgs = append(msgs, journalMessage(e["MESSAGE"]))
			processes[fmt.Sprint(e["_PID"])] = true
		}
	}
	const bannerStart = "hqd dev is serving "
	var banner int
	var bad []string
	inBanner := false
	for i, msg := range msgs {
		var obj map[string]any
		switch {
		case strings.HasPrefix(msg, bannerStart) || msg == "" && i+1 < len(msgs) && strings.HasPrefix(msgs[i+1], bannerStart):
			inBanner = true // it opens with a blank line
			banner++
		case inBanner && !strings.HasPrefix(msg, "{"):
			banner++
		case json.Unmarshal([]byte(msg), &obj) == nil && obj != nil:
			inBanner = false
		default:
			inBanner = false
			bad = append(bad, msg)
		}
	}
	lines := len(msgs)
	detail := fmt.Sprintf("%d lines from %d hqd processes: %d JSON objects, %d of the dev banner", lines, len(processes), lines-banner-len(bad), banner)
	if lines == 0 {
		return detail, errors.New("no line of hqd in the journal")
	}
	if len(bad) > 0 {
		if len(bad) > 5 {
			bad = bad[:5]
		}
		return detail, fmt.Errorf("lines that are not JSON objects, e.g. %q", bad)
	}
	return detail, nil
}

// journalMessage reads MESSAGE, which journalctl gives as an array of
// bytes when it is not valid UTF-8.
func journalMessage(m any) string {
	switch m := m.(type) {
	case string:
		return m
	case []any:
		b := make([]byte, 0, len(m))
		for _, c := range m {
			f, _ := c.(float64)
			b = append(b, byte(f))
		}
		return string(b)
	}
	return ""
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`)

// analyze: systemd-analyze security rates the unit as installed, drop-in
// included; the output goes into the report.
func analyze(ctx context.Context, v *vm) (string, error) {
	out, err := command(ctx, "systemd-analyze", "security", "--no-pager", v.unit)
	v.analyzed = out
	if err != nil {
		return "", err
	}
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		return "", errors.New("no overall exposure level in systemd-analyze's output")
	}
	return "overall exposure " + m[1] + " " + m[2], nil
}

// waitClean waits up to within for no job process and no run cgroup to be
// left, and returns what is left and how long it waited.
func waitClean(ctx context.Context, lake string, within time.Duration) (string, time.Duration) {
	start := time.Now()
	for {
		left := leftovers(lake)
		if left == "" || time.Since(start) > within || ctx.Err() != nil {
			return left, time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leftovers lists the stand-in lake's processes (ps -eo pid,user,args),
// every run-* cgroup under /sys/fs/cgroup, wherever hqd put them, and the
// job units (hqd-job@) still loaded.
func leftovers(lake string) string {
	var left []string
	units, _ := command(context.Background(), "systemctl", "list-units", "--all", "--plain", "--no-legend", "hqd-job@*")
	for _, l := range strings.Split(strings.TrimSpace(units), "\n") {
		if f := strings.Fields(l); len(f) >= 4 {
			left = append(left, "unit "+strings.Join(f[:4], " "))
		}
	}
	for _, p := range lakeProcs(lake) {
		left = append(left, "process "+p.ps)
	}
	_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), "run-") {
			left = append(left, "cgroup "+p)
			return fs.SkipDir
		}
		return nil
	})
	return strings.Join(left, ", ")
}

type proc struct {
	pid    int
	ps     string // ps's line: pid user args
	cgroup string
	uid    string // its real uid, as the host sees it
}

// lakeProcs are the processes running the stand-in lake, as the host sees
// them in ps -eo pid,user,args.
func lakeProcs(lake string) []proc {
	var out []proc
	ps, _ := command(context.Background(), "ps", "-eo", "pid,user,args")
	for _, l := range strings.Split(ps, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || (f[2] != lake && filepath.Base(f[2]) != "lake") {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err == nil {
			out = append(out, proc{pid: pid, ps: strings.Join(f, " "), cgroup: procCgroup(pid), uid: procUID(f[0])})
		}
	}
	return out
}

// procCgroup is pid's cgroup v2 path, "" once it is gone.
func procCgroup(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	cg, _ := strings.CutPrefix(strings.TrimSpace(string(b)), "0::")
	return cg
}

// alivePids are those of pids still running (not gone, not zombies).
func alivePids(pids []int) []int {
	var out []int
	for _, pid := range pids {
		if syscall.Kill(pid, 0) != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := bytes.LastIndexByte(b, ')'); err == nil && i > 0 && bytes.HasPrefix(b[i+1:], []byte(" Z")) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

func procUID(pid string) string {
	b, _ := os.ReadFile("/proc/" + pid + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}

// lastMsgs is the end of a job's messages, for details.
func lastMsgs(evs []event) string {
	var msgs []string
	for _, e := range evs {
		if m := e.msg(); m != "" {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) > 6 {
		msgs = msgs[len(msgs)-6:]
	}
	return strings.Join(msgs, " | ")
}

func atoi(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
