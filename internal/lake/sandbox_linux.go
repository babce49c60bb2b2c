package lake

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/quantapix/hqd/internal/lake/jobexec"
)

// Sandboxing is how runs are sandboxed (SPEC §6.3, docs/SANDBOX.md): each
// run's helper starts in new user, PID, mount and network namespaces, as
// uid 0 of a user namespace that maps it onto a host uid of its own, and
// builds the run's root from read-only pieces of the host.
type Sandboxing struct {
	// UIDs are the host uids runs get, one per concurrent run (hqd as
	// root). Without them every run keeps the daemon's own uid, which is
	// right only where the daemon's uid is itself the run's alone (the
	// per-run systemd unit with DynamicUser=yes).
	UIDs *UIDPool
	// ReadOnly are host paths shown read-only inside: the system's
	// directories and the toolchain.
	ReadOnly []string
	// Etc are the entries of the host's /etc shown read-only.
	Etc []string
}

// SystemPaths are the host directories every run sees read-only: programs
// and libraries, nothing with state.
var SystemPaths = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// EtcNames are what a run sees of /etc: the dynamic linker's cache, the
// certificate store, time zone and alternatives, and nothing else (above
// all not /etc/hqd). passwd, group and hosts are the run's own.
var EtcNames = []string{"alternatives", "ca-certificates", "ca-certificates.conf", "gai.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "os-release", "ssl"}

// NewSandboxing is the sandbox for runs of bin: the system's directories,
// bin's toolchain, and uids from pool (nil: the daemon's own).
func NewSandboxing(bin string, pool *UIDPool) *Sandboxing {
	ro := append([]string(nil), SystemPaths...)
	ro = append(ro, ToolchainDirs(bin)...)
	return &Sandboxing{UIDs: pool, ReadOnly: ro, Etc: EtcNames}
}

// ToolchainDirs are what a run of bin needs to see beyond the system's
// directories: the directory of bin, and the root of the toolchain it
// resolves to (…/bin/lake → …; elan's ~/.elan/bin/lake → ~/.elan, where
// the proxies find their toolchains).
func ToolchainDirs(bin string) []string {
	var out []string
	add := func(p string) {
		root := filepath.Dir(p)
		if filepath.Base(root) == "bin" {
			root = filepath.Dir(root)
		}
		if root == "/" || root == "/usr" || root == "." {
			return // the system's directories are there anyway
		}
		for _, o := range out {
			if o == root {
				return
			}
		}
		out = append(out, root)
	}
	add(bin)
	if real, err := filepath.EvalSymlinks(bin); err == nil {
		add(real)
	}
	return out
}

// elanHome is the elan directory bin belongs to, if any.
func elanHome(bin string) string {
	for _, d := range ToolchainDirs(bin) {
		if b := filepath.Base(d); b == ".elan" || b == "elan" {
			return d
		}
	}
	return ""
}

// UIDPool hands out host uids for runs: none is held by two runs at once,
// and a random pick keeps two daemons on one host (tests) from colliding.
type UIDPool struct {
	first, size int
	mu          sync.Mutex
	used        map[int]bool
}

// NewUIDPool hands out uids first … first+size-1.
func NewUIDPool(first, size int) *UIDPool {
	return &UIDPool{first: first, size: size, used: map[int]bool{}}
}

// Take returns a free uid, or an error when every one is held.
func (p *UIDPool) Take() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.used) >= p.size {
		return 0, errors.New("every job uid is in use")
	}
	for {
		uid := p.first + mrand.IntN(p.size)
		if !p.used[uid] {
			p.used[uid] = true
			return uid, nil
		}
	}
}

// Put gives uid back.
func (p *UIDPool) Put(uid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.used, uid)
}

// startSandboxed starts the helper in the run's namespaces, moves it into
// the run's cgroups, then sends it the sandbox and waits for its word that
// lake started (or why it did not).
func (r *Runner) startSandboxed(spec Spec, g *group, stdout, stderr *os.File) (*started, error) {
	box := r.Box
	uid, release := os.Geteuid(), func() {}
	cred := (*syscall.Credential)(nil)
	if box.UIDs != nil {
		var err error
		if uid, err = box.UIDs.Take(); err != nil {
			return nil, err
		}
		release = func() { box.UIDs.Put(uid) }
		// uid 0 inside is the run's uid outside; the helper becomes it
		// before it runs anything (and so cannot touch the daemon's files).
		// No supplementary group of hqd's either (setgroups is then allowed in
		// the run's namespace, but the run has no capability to use it).
		cred = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	}
	gid := uid
	if box.UIDs == nil {
		gid = os.Getegid()
	}
	src := ScratchPath + "/Source.lean"
	sb := jobexec.Sandbox{
		ReadOnly: box.ReadOnly, Etc: box.Etc, Project: spec.Dir, Scratch: ScratchPath,
		Size: r.Limits.Memory, Dir: spec.Dir,
		Argv: append([]string{r.Bin}, withSource(spec.Args, src)...), Env: r.env(ScratchPath),
	}
	if spec.Source != nil {
		sb.Files = map[string][]byte{src: spec.Source}
	}
	cfg, err := json.Marshal(sb)
	if err != nil {
		release()
		return nil, err
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		release()
		return nil, err
	}
	defer cfgR.Close()
	defer cfgW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		release()
		return nil, err
	}
	defer statusR.Close()
	defer statusW.Close()

	cmd := exec.Command(r.Self, "job-exec", "-sandbox")
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{cfgR, statusW} // fds 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}},
		GidMappingsEnableSetgroups: cred != nil, // only a privileged map may allow it
		Credential:                 cred,
		Setpgid:                    true,
		Pdeathsig:                  syscall.SIGKILL,
	}
	if spec.Stdin != nil {
		cmd.Stdin = bytes.NewReader(spec.Stdin)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	st := &started{cmd: cmd, release: release}
	if err := cmd.Start(); err != nil {
		release()
		return nil, fmt.Errorf("starting the job helper in new namespaces: %w", err)
	}
	cfgR.Close()
	statusW.Close()
	abort := func(err error) (*started, error) {
		_ = cmd.Process.Kill()
		if g != nil {
			_ = g.kill()
		}
		_ = cmd.Wait()
		release()
		return nil, err
	}
	if g != nil {
		if err := g.join(cmd.Process.Pid); err != nil {
			return abort(err)
		}
	}
	st.start = time.Now()
	if _, err := cfgW.Write(cfg); err != nil {
		return abort(fmt.Errorf("sending the sandbox to the job helper: %w", err))
	}
	cfgW.Close()
	_ = statusR.SetReadDeadline(time.Now().Add(30 * time.Second))
	word, _ := bufio.NewReader(statusR).ReadString('\n')
	switch word = strings.TrimSpace(word); {
	case word == "started":
		return st, nil
	case strings.HasPrefix(word, "error: "):
		return abort(fmt.Errorf("the job sandbox: %s", strings.TrimPrefix(word, "error: ")))
	default:
		return abort(errors.New("the job helper ended before it started the run"))
	}
}

// CheckSandbox runs /bin/true in a sandbox like a run's, so a host that
// cannot make one (no user namespaces, a seccomp filter, an old kernel)
// is found at start, with the reason, and not by the first user.
func (r *Runner) CheckSandbox(dir string) error {
	probe := *r
	probe.Bin = "/bin/true"
	probe.Limits.Timeout = 10 * time.Second
	out, err := probe.Run(context.Background(), Spec{Dir: dir}, func(string, string) {})
	if err != nil {
		return err
	}
	if out.ExitCode == nil || *out.ExitCode != 0 || out.Limit != "" {
		return fmt.Errorf("a trial run in the sandbox ended with %+v", out)
	}
	return nil
}
