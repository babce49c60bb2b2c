package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
	"github.com/quantapix/hqd/internal/itest/probe"
)

// probeOf runs a verify job of target and returns its probe report.
func probeOf(t *testing.T, h *hqd, token, target string) (probe.Report, []sseEvent) {
	t.Helper()
	a, job := submit(t, h, token, `{"target":"`+target+`"}`)
	if a.status != 202 {
		t.Fatalf("POST /api/verify %s = %d %s", target, a.status, a.body)
	}
	evs := until(t, mustStream(t, h, job, token), 30*time.Second)
	for _, ev := range evs {
		msg, _ := ev.Data["msg"].(string)
		if rest, ok := strings.CutPrefix(msg, "probe: "); ok {
			var r probe.Report
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				t.Fatalf("probe report %q: %v", rest, err)
			}
			return r, evs
		}
	}
	t.Fatalf("%s printed no probe report: %v", target, evs)
	return probe.Report{}, nil
}

// TestJobSandbox: hqd as root (these machines) runs every job in its own
// sandbox (SPEC §6.3): two users' concurrent jobs each run as a uid of
// their own, see only their own processes, and neither can read hqd's
// state or another user's files, write the result cache or anything
// outside their scratch, or reach hqd's ports.
func TestJobSandbox(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("these machines run the tests as root: hqd as root is the sandbox mode tested here (the unit's mode runs in make test-target)")
	}
	data := t.TempDir()
	cache := filepath.Join(data, "lake-cache")
	files := filepath.Join(data, "files")
	outside, err := net.Listen("tcp", "127.0.0.1:0") // some other service of the host
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	project := itest.LakeProject(t, map[string]map[string]any{"Standin.Probe": {"action": "probe"}, "Standin.Ports": {"action": "probe"}})
	h := startHQD(t, []string{"HQD_LAKE_BIN=" + itest.Standin(t), "HQD_VERIFIER_DIR=" + project, "HQD_JOB_TIMEOUT=20s", "HQD_JOB_MEMORY=128MiB", "HQD_JOB_PIDS=64"},
		"dev", "--addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--data-dir="+data)
	h.waitReady()
	ready := string(do(t, "GET", h.URL+"/readyz", "", nil).body)
	if !strings.Contains(ready, `"sandbox":"namespaces"`) || strings.Contains(ready, data) {
		t.Fatalf("/readyz does not name the namespaces sandbox (or shows a host path): %s", ready)
	}
	alice := devSignIn(t, h, "alice@example.com", "Passw0rd!").AccessToken
	bob := devSignIn(t, h, "bob@example.com", "Passw0rd!").AccessToken
	if a := do(t, "PUT", h.URL+"/api/files/secret.md?raw=1", alice, strings.NewReader("alice's secret")); a.status != 200 {
		t.Fatalf("alice's upload = %d %s", a.status, a.body)
	}
	var alicesFile string
	_ = filepath.Walk(files, func(p string, _ os.FileInfo, _ error) error {
		if filepath.Base(p) == "secret.md" {
			alicesFile = p
		}
		return nil
	})
	if alicesFile == "" {
		t.Fatal("alice's file is not in the dir store")
	}
	// What a hostile job tries (the stand-in reads its scenarios when it
	// runs): hqd's state, Alice's file, the cache, hqd's ports and pid,
	// another service of the host; and, holding on, to see the other job.
	state := []string{filepath.Join(data, "dev-idp", "accounts.json"), filepath.Join(data, "dev-idp", "signing-key.pem"),
		filepath.Join(data, "revocations.json"), alicesFile, "/etc/hostname", "/etc/shadow"}
	targets := probe.Targets{
		Read:    state,
		List:    []string{data, files, cache, "/", "/tmp", "/etc"},
		Write:   []string{filepath.Join(cache, "forged.json"), filepath.Join(project, "Proving", "Forged.lean"), filepath.Join(project, ".lake", "build", "lib", "Out.olean"), "/tmp/hqd-probe-" + t.Name(), "/job/mine", "/usr/probe"},
		Connect: []string{strings.TrimPrefix(h.URL, "http://"), strings.TrimPrefix(h.MetricsURL, "http://"), outside.Addr().String()},
		Signal:  []int{h.cmd.Process.Pid, os.Getpid()},
	}
	held := targets
	held.Hold = 2500
	b, _ := json.Marshal(map[string]map[string]any{"Standin.Probe": {"action": "probe", "probe": held}, "Standin.Ports": {"action": "probe", "probe": targets}})
	if err := os.WriteFile(filepath.Join(project, ".standin", "scenarios.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	// Alice's job holds on while Bob's runs: each must see only itself.
	aliceDone := make(chan probe.Report, 1)
	go func() {
		r, _ := probeOf(t, h, alice, "Standin.Probe")
		aliceDone <- r
	}()
	time.Sleep(700 * time.Millisecond)
	bobR, _ := probeOf(t, h, bob, "Standin.Ports")
	aliceR := <-aliceDone

	for who, r := range map[string]probe.Report{"alice": aliceR, "bob": bobR} {
		t.Run(who, func(t *testing.T) {
			f := strings.Fields(r.UIDMap)
			if len(f) != 3 || f[0] != "0" || f[2] != "1" {
				t.Fatalf("uid map %q: the job is not in a user namespace of one uid", r.UIDMap)
			}
			if host, _ := strconv.Atoi(f[1]); host < 1_000_000_000 {
				t.Errorf("the job's host uid is %d, not one of HQD_JOB_UIDS", host)
			}
			if r.NoNewPriv != "1" || strings.Trim(r.CapEff, "0") != "" {
				t.Errorf("no_new_privs %q, effective capabilities %q", r.NoNewPriv, r.CapEff)
			}
			for p, v := range r.Read {
				if !strings.HasPrefix(v, "refused") {
					t.Errorf("the job read %s: %s", p, v)
				}
			}
			for _, p := range []string{data, files, cache} {
				if v := r.List[p]; !strings.HasPrefix(v, "refused") {
					t.Errorf("the job listed %s: %s", p, v)
				}
			}
			// (A write under /tmp lands in the job's own /tmp: checked below
			// that none reached the host.)
			if v := r.Write["/usr/probe"]; !strings.HasPrefix(v, "refused") {
				t.Errorf("the job wrote /usr: %s", v)
			}
			// Its scratch and the project's build output are its own.
			// (hqd shows the job's output with the project's path cut off:
			// the report names those files relative to it.)
			for _, p := range []string{"/job/mine", "Proving/Forged.lean", ".lake/build/lib/Out.olean"} {
				if v := r.Write[p]; v != "ok" {
					t.Errorf("the job could not write %s: %s", p, v)
				}
			}
			for a, v := range r.Connect {
				if !strings.HasPrefix(v, "refused") {
					t.Errorf("the job reached %s", a)
				}
			}
			for p, v := range r.Signal {
				if !strings.HasPrefix(v, "refused") {
					t.Errorf("the job could signal pid %s", p)
				}
			}
			// Its own processes only: the sandbox's init and the stand-in.
			for _, p := range r.Processes {
				if f := strings.Fields(p); len(f) < 3 || (!strings.Contains(p, "job-exec -sandbox") && f[2] != itest.Standin(t)) {
					t.Errorf("the job sees a process not its own: %s", p)
				}
			}
			if len(r.Processes) > 3 {
				t.Errorf("the job sees %d processes: %v", len(r.Processes), r.Processes)
			}
			// Nothing of hqd's: descriptors, keys, a way to more privilege.
			for _, fd := range r.FDs {
				if n := strings.Fields(fd)[0]; n != "0" && n != "1" && n != "2" {
					t.Errorf("the job holds descriptor %s", fd)
				}
			}
			if r.Keys != "0 keys" && !strings.HasPrefix(r.Keys, "refused") {
				t.Errorf("the job's session keyring: %s", r.Keys)
			}
			if !strings.HasPrefix(r.NestedNS, "refused") {
				t.Errorf("the job made a user namespace of its own: %s", r.NestedNS)
			}
			if r.Hostname != "hqd-job" {
				t.Errorf("the job sees the host's name %q", r.Hostname)
			}
			if strings.Join(r.Env, " ") != "PATH="+filepath.Dir(itest.Standin(t))+":/usr/local/bin:/usr/bin:/bin HOME=/job TMPDIR=/job LANG=C.UTF-8 LC_ALL=C.UTF-8" {
				t.Errorf("the job's environment: %v", r.Env)
			}
		})
	}
	if aliceR.UIDMap == bobR.UIDMap {
		t.Errorf("two concurrent jobs share the host uid: %s", aliceR.UIDMap)
	}
	// Nothing the jobs wrote reached the host.
	for _, p := range []string{filepath.Join(cache, "forged.json"), filepath.Join(project, "Proving", "Forged.lean"), filepath.Join(project, ".lake"), "/tmp/hqd-probe-" + t.Name()} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a job's write reached the host: %s", p)
			_ = os.Remove(p)
		}
	}
}

// TestJobFlood: a job printing 150 MB as fast as it can still ends, with
// its done event, while hqd keeps a bounded part of it (SPEC §6.3: at
// most LogLimit of events, RSS under 200 MiB), says so in the stream, and
// caches nothing of a run whose events were cut.
func TestJobFlood(t *testing.T) {
	project := itest.LakeProject(t, map[string]map[string]any{"Standin.Flood": {"action": "flood"}})
	data := t.TempDir()
	h := startHQD(t, []string{"HQD_LAKE_BIN=" + itest.Standin(t), "HQD_VERIFIER_DIR=" + project, "HQD_JOB_TIMEOUT=100s", "HQD_JOB_MEMORY=256MiB"},
		"dev", "--addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--data-dir="+data)
	h.waitReady()
	tok := devSignIn(t, h, "flood@example.com", "Passw0rd!").AccessToken
	start := time.Now()
	a, job := submit(t, h, tok, `{"target":"Standin.Flood"}`)
	if a.status != 202 {
		t.Fatalf("submit = %d %s", a.status, a.body)
	}
	evs := until(t, mustStream(t, h, job, tok), 100*time.Second)
	took := time.Since(start)
	done := evs[len(evs)-1].Data
	if done["ok"] != true || done["limit"] != "" {
		t.Errorf("done = %v", done)
	}
	var cut bool
	for _, ev := range evs {
		if msg, _ := ev.Data["msg"].(string); strings.HasPrefix(msg, "the rest of the output is not kept") {
			cut = true
		}
	}
	if !cut || len(evs) > 100_000 {
		t.Errorf("%d events kept; cut said: %v", len(evs), cut)
	}
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(h.cmd.Process.Pid) + "/status")
	var peakKB int64
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			peakKB, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	t.Logf("1,500,000 lines (150 MB) in %v: %.0f lines/s end to end; hqd's peak RSS %d MiB; %d events kept", took.Round(time.Millisecond), 1_500_000/took.Seconds(), peakKB>>10, len(evs))
	// SPEC §6.3's 200 MiB is for hqd as built; under -race the detector's
	// own memory comes on top (measured ~215 MiB against ~75 without).
	budget := int64(200)
	if raceBuild {
		budget = 320
	}
	if peakKB == 0 || peakKB > budget<<10 {
		t.Errorf("hqd's peak RSS was %d KiB, over %d MiB", peakKB, budget)
	}
	if ents, _ := os.ReadDir(filepath.Join(data, "lake-cache")); len(ents) != 0 {
		t.Errorf("a run whose events were cut was cached: %d entries", len(ents))
	}
}
