package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/quantapix/hqd/internal/itest/probe"
)

// openFDs lists this process's open descriptors ("N target"), read with
// raw system calls and leaving out the Go runtime's own poller.
func openFDs() []string {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return []string{"refused: " + err.Error()}
	}
	defer unix.Close(dir)
	buf := make([]byte, 8192)
	n, err := unix.ReadDirent(dir, buf)
	if err != nil {
		return []string{"refused: " + err.Error()}
	}
	_, _, names := unix.ParseDirent(buf[:n], -1, nil)
	var out []string
	for _, name := range names {
		if name == strconv.Itoa(dir) {
			continue
		}
		target, _ := os.Readlink("/proc/self/fd/" + name)
		if target == "anon_inode:[eventpoll]" || target == "anon_inode:[eventfd]" {
			continue // the Go runtime's own poller, made when main read its scenarios
		}
		out = append(out, name+" "+target)
	}
	return out
}

// sessionKeys lists the keys in the session keyring ("" when it is empty),
// or why it cannot be read.
func sessionKeys() string {
	const keyctlRead = 11
	keySpecSession := int32(-3) // KEY_SPEC_SESSION_KEYRING
	buf := make([]byte, 4096)
	n, _, errno := syscall.Syscall6(syscall.SYS_KEYCTL, keyctlRead, uintptr(keySpecSession), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if errno != 0 {
		return "refused: " + errno.Error()
	}
	return fmt.Sprintf("%d keys", int(n)/4)
}

func result(err error) string {
	if err != nil {
		return "refused: " + err.Error()
	}
	return "ok"
}

func runProbe(p probe.Targets) {
	fds := openFDs() // first: Go's runtime opens its own once we do anything
	r := probe.Report{UID: os.Getuid(), FDs: fds, Read: map[string]string{}, List: map[string]string{}, Write: map[string]string{},
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
	r.Keys = sessionKeys()
	nested := exec.Command("/bin/true")
	nested.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	r.NestedNS = result(nested.Run())
	r.Hostname, _ = os.Hostname()
	b, _ := json.Marshal(r)
	fmt.Printf("probe: %s\n", b)
	time.Sleep(time.Duration(p.Hold) * time.Millisecond)
}
