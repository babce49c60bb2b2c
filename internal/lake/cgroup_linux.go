package lake

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Isolation modes, as /readyz names them.
const (
	IsolationCgroup2    = "cgroup2"
	IsolationCgroup1    = "cgroup1"
	IsolationUnconfined = "unconfined"
	IsolationNone       = "none"
)

// controllers are the ones every job cgroup gets.
var controllers = []string{"memory", "pids", "cpu"}

// Isolation is how runs are confined: a parent cgroup per controller (v1)
// or one parent in the unified hierarchy (v2), under the daemon's own.
type Isolation struct {
	Mode   string
	Detail string
	v2     string            // parent dir of job cgroups (v2)
	v1     map[string]string // controller → parent dir of job cgroups (v1)
}

// DetectIsolation finds usable cgroups: v2 with memory, pids and cpu
// delegated to us, else v1 hierarchies of those three writable by us.
// Without either, it reports IsolationUnconfined when allowed (rlimits and
// process-group kill only) and IsolationNone otherwise.
func DetectIsolation(allowUnconfined bool) *Isolation {
	var why []string
	if iso, err := detectV2(); err == nil {
		return iso
	} else {
		why = append(why, "cgroup v2: "+err.Error())
	}
	if iso, err := detectV1(); err == nil {
		return iso
	} else {
		why = append(why, "cgroup v1: "+err.Error())
	}
	if allowUnconfined {
		return &Isolation{Mode: IsolationUnconfined, Detail: "unconfined runs allowed: no cgroups (" + strings.Join(why, "; ") + "); rlimits and process-group kill only, limits other than the wall clock are not detected"}
	}
	return &Isolation{Mode: IsolationNone, Detail: "no usable cgroups (" + strings.Join(why, "; ") + "); jobs are refused unless unconfined runs are allowed"}
}

// Job cgroups are named run-{daemon pid}.{its start time}-{random}: a
// daemon killed with SIGKILL leaves its runs' cgroups (and, where a job
// outlived its helper, processes) behind, and the next daemon sweeps
// those whose owner is gone. Two daemons sharing a parent cgroup (tests
// do) never touch each other's runs.
const runPrefix = "run-"

// daemonOwner is this process as its runs' names carry it.
var daemonOwner = ownerOf(os.Getpid())

// ownerOf is "pid.starttime" of a running process, or "" when it is gone:
// the start time tells a reused pid from the daemon that had it.
func ownerOf(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name may hold spaces and parentheses: fields count from
	// the last ')'. starttime is field 22, the 20th after it.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return strconv.Itoa(pid) + "." + f[19]
}

// Sweep kills the processes of, and removes, every job cgroup whose
// daemon is no longer running; it returns how many it removed. hqd calls
// it at start, so a crash leaves no job running and no cgroup behind.
func (iso *Isolation) Sweep() (int, error) {
	var parents []string
	switch iso.Mode {
	case IsolationCgroup2:
		parents = []string{iso.v2}
	case IsolationCgroup1:
		for _, c := range controllers {
			parents = append(parents, iso.v1[c])
		}
	default:
		return 0, nil
	}
	stale := map[string]*group{}
	for _, p := range parents {
		ents, err := os.ReadDir(p)
		if err != nil {
			return 0, err
		}
		for _, e := range ents {
			owner, _, ok := strings.Cut(strings.TrimPrefix(e.Name(), runPrefix), "-")
			if !e.IsDir() || !strings.HasPrefix(e.Name(), runPrefix) || !ok || !strings.Contains(owner, ".") {
				continue
			}
			pid, err := strconv.Atoi(owner[:strings.IndexByte(owner, '.')])
			if err != nil || ownerOf(pid) == owner {
				continue // a running daemon's
			}
			g := stale[e.Name()]
			if g == nil {
				g = &group{}
				stale[e.Name()] = g
			}
			d := filepath.Join(p, e.Name())
			g.dirs = append(g.dirs, d)
			if iso.Mode == IsolationCgroup2 {
				g.v2 = d
			}
		}
	}
	var errs []error
	for _, g := range stale {
		if err := g.kill(); err != nil {
			errs = append(errs, err)
		}
		g.remove()
	}
	return len(stale), errors.Join(errs...)
}

// ownCgroups reads /proc/self/cgroup: controller (or "" for v2) → path.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") { // "cpu,cpuacct" mounts together
			out[c] = parts[2]
		}
	}
	return out, sc.Err()
}

type mount struct{ root, point, fstype, opts string }

// cgroupMounts reads the cgroup mounts of /proc/self/mountinfo.
func cgroupMounts() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+4 || len(fields) < 5 {
			continue
		}
		fstype := fields[sep+1]
		if fstype == "cgroup" || fstype == "cgroup2" {
			out = append(out, mount{root: fields[3], point: fields[4], fstype: fstype, opts: fields[sep+3]})
		}
	}
	return out, sc.Err()
}

// inMount maps a cgroup path to its directory under mount m.
func inMount(m mount, path string) string {
	rel, err := filepath.Rel(m.root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = path // a mount of the hierarchy's root: paths are absolute
	}
	return filepath.Join(m.point, rel)
}

func writeFile(name, value string) error {
	return os.WriteFile(name, []byte(value), 0)
}

func detectV2() (*Isolation, error) {
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	path, ok := own[""]
	if !ok {
		return nil, errors.New("no unified hierarchy entry in /proc/self/cgroup")
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		if m.fstype != "cgroup2" {
			continue
		}
		// Controllers are what the mount offers, not what is mounted:
		// these build machines mount an empty cgroup2 beside v1.
		avail, err := os.ReadFile(filepath.Join(m.point, "cgroup.controllers"))
		if err != nil {
			return nil, err
		}
		for _, c := range controllers {
			if !strings.Contains(" "+strings.TrimSpace(string(avail))+" ", " "+c+" ") {
				return nil, fmt.Errorf("the %s controller is not available at %s", c, m.point)
			}
		}
		dir := inMount(m, path)
		parent, err := prepareV2(dir)
		if err != nil {
			return nil, err
		}
		return &Isolation{Mode: IsolationCgroup2, Detail: "cgroup v2 at " + parent, v2: parent}, nil
	}
	return nil, errors.New("no cgroup2 mount")
}

// prepareV2 makes dir/hqd-jobs a parent for job cgroups with the three
// controllers enabled. cgroup v2 lets only leaves hold processes, so when
// the daemon's own cgroup holds processes (systemd's Delegate=yes unit)
// they move to dir/hqd-daemon first.
func prepareV2(dir string) (string, error) {
	want := "+memory +pids +cpu"
	if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), want); err != nil {
		if !errors.Is(err, syscall.EBUSY) {
			return "", fmt.Errorf("enabling controllers in %s: %w", dir, err)
		}
		leaf := filepath.Join(dir, "hqd-daemon")
		if err := os.MkdirAll(leaf, 0o755); err != nil {
			return "", err
		}
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return "", err
		}
		for _, pid := range strings.Fields(string(procs)) {
			if err := writeFile(filepath.Join(leaf, "cgroup.procs"), pid); err != nil && !errors.Is(err, syscall.ESRCH) {
				return "", fmt.Errorf("moving process %s to %s: %w", pid, leaf, err)
			}
		}
		if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), want); err != nil {
			return "", fmt.Errorf("enabling controllers in %s: %w", dir, err)
		}
	}
	jobs := filepath.Join(dir, "hqd-jobs")
	if err := os.MkdirAll(jobs, 0o755); err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(jobs, "cgroup.subtree_control"), want); err != nil {
		return "", fmt.Errorf("enabling controllers in %s: %w", jobs, err)
	}
	return jobs, nil
}

func detectV1() (*Isolation, error) {
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	iso := &Isolation{Mode: IsolationCgroup1, v1: map[string]string{}}
	for _, c := range controllers {
		var found bool
		for _, m := range mounts {
			if m.fstype != "cgroup" || !strings.Contains(","+m.opts+",", ","+c+",") {
				continue
			}
			path, ok := own[c]
			if !ok {
				return nil, fmt.Errorf("no %s entry in /proc/self/cgroup", c)
			}
			// Job cgroups nest under the daemon's own, per controller:
			// here memory may be /something/<id> while pids is /.
			parent := filepath.Join(inMount(m, path), "hqd-jobs")
			if err := os.MkdirAll(parent, 0o755); err != nil {
				return nil, fmt.Errorf("%s: %w", c, err)
			}
			if err := syscall.Access(parent, 2); err != nil {
				return nil, fmt.Errorf("%s is not writable: %w", parent, err)
			}
			iso.v1[c] = parent
			found = true
			break
		}
		if !found {
			return nil, fmt.Errorf("the %s controller is not mounted", c)
		}
	}
	iso.Detail = fmt.Sprintf("cgroup v1: memory %s, pids %s, cpu %s", iso.v1["memory"], iso.v1["pids"], iso.v1["cpu"])
	return iso, nil
}

// Confined says whether runs get cgroups.
func (iso *Isolation) Confined() bool {
	return iso.Mode == IsolationCgroup1 || iso.Mode == IsolationCgroup2
}

// group is one run's cgroup(s).
type group struct {
	v2   string            // the run's dir (v2)
	v1   map[string]string // controller → the run's dir (v1)
	dirs []string
}

// newGroup makes the run's cgroup(s) with limits.
func (iso *Isolation) newGroup(name string, lim Limits) (*group, error) {
	g := &group{}
	fail := func(err error) (*group, error) {
		g.remove()
		return nil, fmt.Errorf("making cgroup %s: %w", name, err)
	}
	quota := strconv.FormatInt(int64(lim.CPU*100000), 10)
	switch iso.Mode {
	case IsolationCgroup2:
		g.v2 = filepath.Join(iso.v2, name)
		if err := os.Mkdir(g.v2, 0o755); err != nil {
			return fail(err)
		}
		g.dirs = []string{g.v2}
		sets := [][2]string{{"memory.max", strconv.FormatInt(lim.Memory, 10)}, {"pids.max", strconv.FormatInt(lim.Pids, 10)}, {"cpu.max", quota + " 100000"}}
		if _, err := os.Stat(filepath.Join(g.v2, "memory.swap.max")); err == nil {
			sets = append(sets, [2]string{"memory.swap.max", "0"}) // or a memory hog swaps and ends as a timeout
		}
		for _, s := range sets {
			if err := writeFile(filepath.Join(g.v2, s[0]), s[1]); err != nil {
				return fail(err)
			}
		}
	case IsolationCgroup1:
		g.v1 = map[string]string{}
		for _, c := range controllers {
			d := filepath.Join(iso.v1[c], name)
			if err := os.Mkdir(d, 0o755); err != nil {
				return fail(err)
			}
			g.v1[c], g.dirs = d, append(g.dirs, d)
		}
		mem := strconv.FormatInt(lim.Memory, 10)
		sets := [][2]string{{g.v1["memory"] + "/memory.limit_in_bytes", mem}}
		if _, err := os.Stat(g.v1["memory"] + "/memory.memsw.limit_in_bytes"); err == nil {
			// Where swap is accounted, cap memory+swap too, or a memory hog
			// swaps and ends as a timeout.
			sets = append(sets, [2]string{g.v1["memory"] + "/memory.memsw.limit_in_bytes", mem})
		}
		sets = append(sets, [2]string{g.v1["pids"] + "/pids.max", strconv.FormatInt(lim.Pids, 10)},
			[2]string{g.v1["cpu"] + "/cpu.cfs_period_us", "100000"}, [2]string{g.v1["cpu"] + "/cpu.cfs_quota_us", quota})
		for _, s := range sets {
			if err := writeFile(s[0], s[1]); err != nil {
				return fail(err)
			}
		}
	default:
		return nil, errors.New("no cgroups")
	}
	return g, nil
}

// newRunName names a run's cgroups: the daemon's identity and a random
// part, so a cgroup left behind by an earlier daemon is never taken over,
// and Sweep knows whose it is.
func newRunName() string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails on Linux
	return runPrefix + daemonOwner + "-" + hex.EncodeToString(rnd[:])
}

// join moves the process pid into every cgroup of the group.
func (g *group) join(pid int) error {
	for _, f := range g.procsFiles() {
		if err := writeFile(f, strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("moving the run into %s: %w", filepath.Dir(f), err)
		}
	}
	return nil
}

// procsFiles are the cgroup.procs files of the group.
func (g *group) procsFiles() []string {
	out := make([]string, 0, len(g.dirs))
	for _, d := range g.dirs {
		out = append(out, filepath.Join(d, "cgroup.procs"))
	}
	return out
}

// pids lists the processes in the group.
func (g *group) pids() []int {
	seen := map[int]bool{}
	var out []int
	for _, d := range g.dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out
}

// counter reads "key N" from a flat-keyed cgroup file.
func counter(file, key string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// tripped names the limit the group's own counters say was hit: memory
// (the OOM killer ran) or pids (a fork was refused), else "".
func (g *group) tripped() string {
	if g.v2 != "" {
		if counter(filepath.Join(g.v2, "memory.events"), "oom_kill") > 0 {
			return "memory"
		}
		if counter(filepath.Join(g.v2, "pids.events"), "max") > 0 {
			return "pids"
		}
		return ""
	}
	if counter(filepath.Join(g.v1["memory"], "memory.oom_control"), "oom_kill") > 0 {
		return "memory"
	}
	if counter(filepath.Join(g.v1["pids"], "pids.events"), "max") > 0 {
		return "pids"
	}
	return ""
}

// kill ends every process in the group, also those that left the process
// group or ignore SIGTERM, and waits until the group is empty.
func (g *group) kill() error {
	if g.v2 != "" {
		if err := writeFile(filepath.Join(g.v2, "cgroup.kill"), "1"); err == nil {
			return g.waitEmpty(5 * time.Second)
		}
	}
	// v1 has no cgroup.kill: kill what is listed until nothing is (a
	// process may fork between the read and the kill).
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := g.pids()
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL) // it may be gone already
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v survive in %s", pids, g.dirs[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (g *group) waitEmpty(d time.Duration) error {
	deadline := time.Now().Add(d)
	for len(g.pids()) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v survive in %s", g.pids(), g.dirs[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// remove deletes the group's cgroups (empty ones only; the kernel may
// take a moment after the last process is reaped).
func (g *group) remove() {
	for _, d := range g.dirs {
		for i := 0; i < 50; i++ {
			if err := os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
