package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// probes are what the probe action tries from inside a job, as an attacker
// would: read, list and write paths of the host, connect to its sockets,
// signal its processes. The tests name the targets (hqd's data dir, its
// port, …) and check the report against what the sandbox must refuse.
type probes struct {
	Read    []string `json:"read"`    // files to read
	List    []string `json:"list"`    // directories to list
	Write   []string `json:"write"`   // files to create
	Connect []string `json:"connect"` // host:port to dial over TCP
	Signal  []int    `json:"signal"`  // pids to send signal 0
	Hold    int      `json:"holdMs"`  // stay alive this long after probing (to be seen by another job)
}

// report is the probe's one line of output: "probe: {json}".
type report struct {
	UID       int               `json:"uid"`
	UIDMap    string            `json:"uidMap"` // the user namespace's map: the host uid outside
	NoNewPriv string            `json:"noNewPrivs"`
	CapEff    string            `json:"capEff"`
	Read      map[string]string `json:"read"` // "ok: N bytes" or the error
	List      map[string]string `json:"list"`
	Write     map[string]string `json:"write"`
	Connect   map[string]string `json:"connect"`
	Signal    map[string]string `json:"signal"`
	Processes []string          `json:"processes"` // "pid uid cmdline" of every process the job can see
	Env       []string          `json:"env"`
	Cwd       string            `json:"cwd"`
}

func result(err error) string {
	if err != nil {
		return "refused: " + err.Error()
	}
	return "ok"
}

func probe(p probes) {
	r := report{UID: os.Getuid(), Read: map[string]string{}, List: map[string]string{}, Write: map[string]string{},
		Connect: map[string]string{}, Signal: map[string]string{}, Env: os.Environ()}
	if b, err := os.ReadFile("/proc/self/uid_map"); err == nil {
		r.UIDMap = strings.Join(strings.Fields(string(b)), " ")
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "NoNewPrivs:"); ok {
				r.NoNewPriv = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
				r.CapEff = strings.TrimSpace(v)
			}
		}
	}
	r.Cwd, _ = os.Getwd()
	for _, f := range p.Read {
		b, err := os.ReadFile(f)
		if err == nil {
			r.Read[f] = fmt.Sprintf("ok: %d bytes", len(b))
		} else {
			r.Read[f] = result(err)
		}
	}
	for _, d := range p.List {
		ents, err := os.ReadDir(d)
		if err == nil {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			r.List[d] = "ok: " + strings.Join(names, " ")
		} else {
			r.List[d] = result(err)
		}
	}
	for _, f := range p.Write {
		_ = os.MkdirAll(filepath.Dir(f), 0o755)
		r.Write[f] = result(os.WriteFile(f, []byte("written by a job\n"), 0o644))
	}
	for _, a := range p.Connect {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err == nil {
			c.Close()
		}
		r.Connect[a] = result(err)
	}
	for _, pid := range p.Signal {
		r.Signal[strconv.Itoa(pid)] = result(syscall.Kill(pid, 0))
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		st, err := os.Stat("/proc/" + e.Name())
		uid := -1
		if err == nil {
			uid = int(st.Sys().(*syscall.Stat_t).Uid)
		}
		r.Processes = append(r.Processes, fmt.Sprintf("%s %d %s", e.Name(), uid, strings.ReplaceAll(string(cmd), "\x00", " ")))
	}
	b, _ := json.Marshal(r)
	fmt.Printf("probe: %s\n", b)
	time.Sleep(time.Duration(p.Hold) * time.Millisecond)
}
