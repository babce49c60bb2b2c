package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/quantapix/hqd/internal/itest/probe"
)

// The test project and hqd's state in the VM (vm_test.go's drop-in).
const (
	projectDir = "/srv/lake/proving"
	dataDir    = "/var/lib/hqd"
)

// probeSandbox: two users' probing jobs, run at once under the shipped
// units, as an attacker would (issue 14's "Done when"): each runs as a
// host uid of its own (neither root nor hqd's), cannot read a state file,
// writes nothing outside its scratch that reaches the host, reaches no
// socket of the host, and sees neither hqd nor the other job.
func probeSandbox(ctx context.Context, v *vm) (string, error) {
	alice, err := v.signIn(ctx, "probe-alice@example.com")
	if err != nil {
		return "", err
	}
	bob, err := v.signIn(ctx, "probe-bob@example.com")
	if err != nil {
		return "", err
	}
	if s, b, err := v.do(ctx, "PUT", "/api/files/secret.md?raw=1", alice, []byte("alice's secret")); err != nil || s != 200 {
		return "", fmt.Errorf("alice's upload = %d %s %v", s, b, err)
	}
	var state []string
	_ = filepath.WalkDir(dataDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(p, "/certmagic/") {
			state = append(state, p) // the signing key, accounts, revocations, alice's file, …
		}
		return nil
	})
	env, _ := filepath.Glob("/etc/hqd/*")
	state = append(state, env...)
	p, err := v.show(ctx, "MainPID")
	if err != nil {
		return "", err
	}
	hqdPid, _ := strconv.Atoi(p["MainPID"])
	forged := filepath.Join(dataDir, "lake-cache", "forged.json")
	targets := probe.Targets{
		Read:    append(state, "/etc/shadow", "/etc/hostname", fmt.Sprintf("/proc/%d/environ", hqdPid)),
		List:    []string{dataDir, filepath.Join(dataDir, "files"), filepath.Join(dataDir, "lake-cache"), "/etc/hqd", "/", "/etc", "/tmp", "/var"},
		Write:   []string{forged, filepath.Join(projectDir, "Proving", "Forged.lean"), filepath.Join(projectDir, ".lake", "build", "lib", "Out.olean"), "/job/mine", "/usr/probe", "/var/probe"},
		Connect: []string{v.host, "127.0.0.1:9100", "127.0.0.1:80", "169.254.169.254:80", "[::1]:8080"},
		Signal:  []int{hqdPid, 1},
		Hold:    3000,
	}
	b, _ := json.Marshal(map[string]any{"action": "probe", "probe": targets})
	// Two targets: two users' identical jobs would share one run.
	for _, target := range []string{"Standin.Probe", "Standin.Probe2"} {
		if err := writeScenario(target, b); err != nil {
			return "", err
		}
	}

	type result struct {
		r   probe.Report
		err error
	}
	run := func(tok, target string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			r, err := probeOnce(ctx, v, tok, target)
			ch <- result{r, err}
		}()
		return ch
	}
	// While they hold on, their processes as the host sees them.
	var hostView []proc
	sampled := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			hostView = append(hostView, lakeProcs(v.lake)...)
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	aliceCh := run(alice, "Standin.Probe")
	time.Sleep(1000 * time.Millisecond)
	bobCh := run(bob, "Standin.Probe2")
	a, bb := <-aliceCh, <-bobCh
	close(stop)
	<-sampled
	if a.err != nil || bb.err != nil {
		return "", errors.Join(a.err, bb.err)
	}

	var bad []string
	hqdUID := procUID(p["MainPID"])
	uids := map[string]bool{}
	for who, r := range map[string]probe.Report{"alice": a.r, "bob": bb.r} {
		f := strings.Fields(r.UIDMap)
		if len(f) != 3 || f[0] != "0" || f[2] != "1" {
			bad = append(bad, fmt.Sprintf("%s: uid map %q is not one uid of its own", who, r.UIDMap))
		} else {
			uids[f[1]] = true
			if f[1] == "0" || f[1] == hqdUID {
				bad = append(bad, fmt.Sprintf("%s runs as host uid %s (hqd is %s)", who, f[1], hqdUID))
			}
		}
		if r.NoNewPriv != "1" || strings.Trim(r.CapEff, "0") != "" {
			bad = append(bad, fmt.Sprintf("%s: no_new_privs %q, CapEff %q", who, r.NoNewPriv, r.CapEff))
		}
		for p, res := range r.Read {
			if !strings.HasPrefix(res, "refused") {
				bad = append(bad, fmt.Sprintf("%s read %s (%s)", who, p, res))
			}
		}
		for _, p := range []string{dataDir, filepath.Join(dataDir, "files"), filepath.Join(dataDir, "lake-cache"), "/etc/hqd", "/var"} {
			if res := r.List[p]; !strings.HasPrefix(res, "refused") {
				bad = append(bad, fmt.Sprintf("%s listed %s (%s)", who, p, res))
			}
		}
		for _, p := range []string{"/usr/probe", "/var/probe"} {
			if res := r.Write[p]; !strings.HasPrefix(res, "refused") {
				bad = append(bad, fmt.Sprintf("%s wrote %s", who, p))
			}
		}
		// hqd shows a job's output with the project's path cut off, so the
		// report names the project's files relative to it.
		for _, p := range []string{"/job/mine", "Proving/Forged.lean", ".lake/build/lib/Out.olean"} {
			if res := r.Write[p]; res != "ok" {
				bad = append(bad, fmt.Sprintf("%s could not write %s, which is its own: %s", who, p, res))
			}
		}
		for addr, res := range r.Connect {
			if !strings.HasPrefix(res, "refused") {
				bad = append(bad, fmt.Sprintf("%s reached %s", who, addr))
			}
		}
		for pid, res := range r.Signal {
			if pid != "1" && !strings.HasPrefix(res, "refused") {
				bad = append(bad, fmt.Sprintf("%s could signal pid %s", who, pid))
			}
		}
		for _, p := range r.Processes {
			if !strings.Contains(p, "job-exec -sandbox") && !strings.Contains(p, v.lake) {
				bad = append(bad, fmt.Sprintf("%s sees a process not its own: %s", who, p))
			}
		}
		if len(r.Processes) > 3 {
			bad = append(bad, fmt.Sprintf("%s sees %d processes", who, len(r.Processes)))
		}
		for _, fd := range r.FDs {
			if n := strings.Fields(fd)[0]; n != "0" && n != "1" && n != "2" {
				bad = append(bad, fmt.Sprintf("%s holds descriptor %s", who, fd))
			}
		}
		if r.Keys != "0 keys" && !strings.HasPrefix(r.Keys, "refused") {
			bad = append(bad, fmt.Sprintf("%s's session keyring: %s", who, r.Keys))
		}
		if !strings.HasPrefix(r.NestedNS, "refused") {
			bad = append(bad, fmt.Sprintf("%s made a user namespace of its own", who))
		}
		if r.Hostname != "hqd-job" {
			bad = append(bad, fmt.Sprintf("%s sees the host's name %q", who, r.Hostname))
		}
	}
	if len(uids) != 2 {
		bad = append(bad, fmt.Sprintf("the two concurrent jobs share a host uid: %v", uids))
	}
	seen := map[string]bool{}
	for _, pr := range hostView {
		uid := pr.uid
		if uid == "" {
			continue // gone between ps and /proc
		}
		seen[uid] = true
		if uid == "0" || uid == hqdUID {
			bad = append(bad, fmt.Sprintf("the host sees job process %s as uid %s", pr.ps, uid))
		}
	}
	if len(seen) < 2 {
		bad = append(bad, fmt.Sprintf("the host saw the jobs' processes as uids %v, not two of their own", keys(seen)))
	}
	// Nothing the jobs wrote reached the host.
	for _, p := range []string{forged, filepath.Join(projectDir, "Proving", "Forged.lean"), filepath.Join(projectDir, ".lake", "build", "lib", "Out.olean")} {
		if _, err := os.Stat(p); err == nil {
			bad = append(bad, "a job's write reached the host: "+p)
		}
	}
	detail := fmt.Sprintf("host uids of the two jobs %v (hqd %s; the host saw %v); each: read %d state files (all refused), %d connects refused, processes %v, descriptors %v, keyring %q, nested user namespace %q; alice wrote %s",
		keys(uids), hqdUID, keys(seen), len(a.r.Read), len(a.r.Connect), a.r.Processes, a.r.FDs, a.r.Keys, a.r.NestedNS, compact(a.r.Write))
	if len(bad) > 0 {
		return detail, errors.New(strings.Join(bad, "; "))
	}
	return detail, nil
}

// probeOnce runs one verify job of target and returns its report.
func probeOnce(ctx context.Context, v *vm, tok, target string) (probe.Report, error) {
	st, err := v.startJob(ctx, tok, target)
	if err != nil {
		return probe.Report{}, err
	}
	defer st.cancel()
	evs, ok := st.until(ctx, func(e event) bool { return e.Type == "done" })
	if !ok {
		return probe.Report{}, fmt.Errorf("the probe's stream ended without done: %s", lastMsgs(evs))
	}
	for _, e := range evs {
		if rest, ok := strings.CutPrefix(e.msg(), "probe: "); ok {
			var r probe.Report
			return r, json.Unmarshal([]byte(rest), &r)
		}
	}
	return probe.Report{}, fmt.Errorf("the probe printed no report: %s", lastMsgs(evs))
}

// writeScenario sets one scenario of the test project (the stand-in reads
// them when it runs).
func writeScenario(target string, sc json.RawMessage) error {
	f := filepath.Join(projectDir, ".standin", "scenarios.json")
	b, err := os.ReadFile(f)
	if err != nil {
		return err
	}
	all := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	all[target] = sc
	b, _ = json.Marshal(all)
	return os.WriteFile(f, b, 0o644)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
