package jobexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Sandbox is what the helper builds around one run, sent by hqd on fd 3
// once the helper is in its cgroups. The helper starts in its own user,
// PID, mount and network namespaces (hqd's clone flags), as uid 0 of a
// user namespace that maps that one uid onto the run's own host uid.
type Sandbox struct {
	// ReadOnly are host paths shown read-only at the same path: the
	// system's directories and the toolchain. Missing ones are skipped;
	// a symbolic link is shown as the same link.
	ReadOnly []string `json:"readOnly"`
	// Etc are the names under /etc shown read-only (ld.so.cache, ssl, …):
	// nothing else of the host's /etc, above all not /etc/hqd.
	Etc []string `json:"etc"`
	// Project is shown at its own path as an overlay: the project read-only
	// below, the run's own writable layer above, so `lake build` writes
	// .lake/ without touching the shared project.
	Project string `json:"project"`
	// Scratch is the run's writable directory (HOME, TMPDIR) and Files are
	// written into it before the run starts (the source of a check).
	Scratch string            `json:"scratch"`
	Files   map[string][]byte `json:"files,omitempty"`
	// Size bounds each of the run's in-memory file systems (its writes are
	// charged to its cgroup's memory too).
	Size int64 `json:"size"`
	// Dir, Argv and Env are the run itself.
	Dir  string   `json:"dir"`
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
}

// Hostname is the name a run sees for its host.
const Hostname = "hqd-job"

// The helper's descriptors besides 0–2: the sandbox's description (read
// to its end) and the status it reports (one line, then closed).
const (
	configFD = 3
	statusFD = 4
)

// stage is where the helper assembles the run's file systems: a tmpfs
// mounted over /tmp in the run's own mount namespace (every path it needs
// from the host is opened before, so nothing under the host's /tmp is lost).
const stage = "/tmp"

// RunSandbox is the helper's -sandbox mode: read the description, build
// the sandbox, start the run as its child and wait for it as the PID
// namespace's init. When this process exits, the kernel kills whatever is
// left in the namespace, so no descendant of the run outlives it.
func RunSandbox() int {
	runtime.LockOSThread() // the privileges dropped below are the thread's own
	status := os.NewFile(statusFD, "status")
	fail := func(step string, err error) int {
		fmt.Fprintf(status, "error: %s: %v\n", step, err)
		return 125
	}
	var sb Sandbox
	cfg := os.NewFile(configFD, "config")
	b, err := io.ReadAll(cfg)
	cfg.Close()
	if err == nil {
		err = json.Unmarshal(b, &sb)
	}
	if err != nil {
		return fail("reading the sandbox", err)
	}
	if err := build(&sb); err != nil {
		return fail("building the sandbox", err)
	}
	if err := leaveNothingBehind(); err != nil {
		return fail("parting from the daemon", err)
	}
	if err := dropPrivileges(); err != nil {
		return fail("dropping privileges", err)
	}
	pid, err := syscall.ForkExec(sb.Argv[0], sb.Argv, &syscall.ProcAttr{
		Dir: sb.Dir, Env: sb.Env, Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		return fail("starting "+sb.Argv[0], err)
	}
	fmt.Fprintf(status, "started\n")
	status.Close()
	os.Stdin.Close()
	os.Stdout.Close()
	os.Stderr.Close()
	return reap(pid)
}

// reap waits for every child until the run's own process ends, and answers
// its exit code: 128+signal when a signal ended it.
func reap(pid int) int {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 125 // no children left: cannot happen before pid ends
		}
		if got != pid {
			continue // an orphan of the run, reparented to us
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}

// build assembles the run's root and enters it.
func build(sb *Sandbox) error {
	if len(sb.Argv) == 0 || !filepath.IsAbs(sb.Project) || !filepath.IsAbs(sb.Scratch) || !filepath.IsAbs(sb.Dir) {
		return errors.New("incomplete description")
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	// Everything taken from the host is opened first: the stage's tmpfs
	// then covers /tmp, where a toolchain or a project may lie (tests).
	type source struct {
		path string
		fd   int
		link string // a symbolic link is recreated, not mounted
		dir  bool
	}
	open := func(p string) (*source, error) {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			l, err := os.Readlink(p)
			return &source{path: p, fd: -1, link: l}, err
		}
		fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			return nil, err
		}
		return &source{path: p, fd: fd, dir: fi.IsDir()}, nil
	}
	var ro []*source
	for _, p := range sb.ReadOnly {
		s, err := open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("opening %s: %w", p, err)
		}
		ro = append(ro, s)
	}
	for _, name := range sb.Etc {
		s, err := open(filepath.Join("/etc", name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("opening /etc/%s: %w", name, err)
		}
		ro = append(ro, s)
	}
	var devs []*source
	for _, d := range []string{"null", "zero", "full", "random", "urandom"} {
		s, err := open("/dev/" + d)
		if err != nil {
			return fmt.Errorf("opening /dev/%s: %w", d, err)
		}
		devs = append(devs, s)
	}
	project, err := open(sb.Project)
	if err != nil || !project.dir {
		return fmt.Errorf("opening the project %s: %v", sb.Project, err)
	}
	dirs, err := projectDirs(sb.Project)
	if err != nil {
		return fmt.Errorf("reading the project %s: %w", sb.Project, err)
	}

	size := "size=" + strconv.FormatInt(max(sb.Size, 1<<20), 10)
	if err := unix.Mount("tmpfs", stage, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,"+size); err != nil {
		return fmt.Errorf("mounting the stage: %w", err)
	}
	root := stage + "/root"
	for _, d := range []string{root, stage + "/upper", stage + "/work", stage + "/scratch", stage + "/tmp"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(stage+"/tmp", 0o1777); err != nil {
		return err
	}
	if err := unix.Mount(root, root, "", unix.MS_BIND, ""); err != nil { // pivot_root wants a mount point
		return fmt.Errorf("binding the root: %w", err)
	}
	at := func(p string) string { return filepath.Join(root, p) }
	bind := func(s *source, target string, readOnly bool) error {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if s.link != "" {
			return os.Symlink(s.link, target)
		}
		if s.dir {
			if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
		} else if err := os.WriteFile(target, nil, 0o644); err != nil {
			return err
		}
		if err := unix.Mount("/proc/self/fd/"+strconv.Itoa(s.fd), target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("binding %s: %w", s.path, err)
		}
		if !readOnly {
			return nil
		}
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
		if err := unix.MountSetattr(unix.AT_FDCWD, target, unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("making %s read-only: %w", s.path, err)
		}
		return nil
	}
	// The run's writable directories first: what is bound below them (a
	// toolchain or project under /tmp) stays visible above them.
	for src, dst := range map[string]string{stage + "/scratch": sb.Scratch, stage + "/tmp": "/tmp"} {
		if err := os.MkdirAll(at(dst), 0o755); err != nil {
			return err
		}
		if err := unix.Mount(src, at(dst), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding %s: %w", dst, err)
		}
	}
	for _, s := range ro {
		if err := bind(s, at(s.path), true); err != nil {
			return err
		}
	}
	for _, s := range devs {
		if err := bind(s, at(s.path), false); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, at("/dev/"+name)); err != nil {
			return err
		}
	}
	// A few files of /etc are the run's own, so that tools that look up
	// their user or localhost find an answer without the host's.
	for name, content := range map[string]string{
		"passwd": "root:x:0:0:lake job:" + sb.Scratch + ":/bin/sh\n",
		"group":  "root:x:0:\n",
		"hosts":  "127.0.0.1 localhost\n::1 localhost\n",
	} {
		if err := os.MkdirAll(at("/etc"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(at("/etc/"+name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(at("/proc"), 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", at("/proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc for the run's PID namespace: %w", err)
	}
	if err := os.MkdirAll(at(sb.Project), 0o755); err != nil {
		return err
	}
	// The project's directories, made again in the run's own layer: a
	// directory present in both layers takes its owner from the upper one,
	// so the run (which owns nothing of the host) can create files in them
	// — lake's .lake/build, its lock file — while every file of the
	// project stays the host's, read-only.
	for _, d := range dirs {
		if err := os.Mkdir(filepath.Join(stage, "upper", d.rel), d.mode|0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("preparing the project's layer: %w", err)
		}
	}
	lower := "/proc/self/fd/" + strconv.Itoa(project.fd)
	opts := "lowerdir=" + lower + ",upperdir=" + stage + "/upper,workdir=" + stage + "/work,userxattr"
	if err := unix.Mount("overlay", at(sb.Project), "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mounting the project %s as an overlay: %w", sb.Project, err)
	}
	for p, content := range sb.Files {
		rel, err := filepath.Rel(sb.Scratch, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("the file %s is not in the scratch directory", p)
		}
		if err := os.WriteFile(filepath.Join(stage, "scratch", rel), content, 0o644); err != nil {
			return err
		}
	}
	for _, s := range append(ro, append(devs, project)...) {
		if s.fd >= 0 {
			unix.Close(s.fd)
		}
	}

	// Enter the new root; the old one is detached, so nothing of the host
	// but what was bound above can be reached.
	if err := os.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}); err != nil {
		return fmt.Errorf("making the root read-only: %w", err)
	}
	if err := loopbackUp(); err != nil {
		return fmt.Errorf("bringing up the loopback interface: %w", err)
	}
	if err := unix.Sethostname([]byte(Hostname)); err != nil { // not the host's
		return fmt.Errorf("naming the run's host: %w", err)
	}
	return os.Chdir(sb.Dir)
}

// maxProjectDirs bounds the directories made again in the run's layer.
const maxProjectDirs = 20000

type projectDir struct {
	rel  string
	mode os.FileMode
}

// projectDirs lists the project's directories, parents first, leaving out
// version control and the packages it depends on (built once, for every
// run, when the project was installed).
func projectDirs(root string) ([]projectDir, error) {
	var out []projectDir
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ".git" || rel == filepath.Join(".lake", "packages") {
			return filepath.SkipDir
		}
		if len(out) >= maxProjectDirs {
			return filepath.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if rel != "." {
			out = append(out, projectDir{rel, info.Mode().Perm()})
		}
		return nil
	})
	return out, err
}

// loopbackUp brings up lo in the run's network namespace (its only
// interface): a run may talk to itself, and to nothing else.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// leaveNothingBehind parts the run from what it would otherwise share with
// the daemon that started it: open descriptors (only 0–2 reach the run),
// the session keyring (a keyring one holds grants its permissions whatever
// the uid), core dumps (the host's handler), and more user namespaces
// (in a nested one a run would hold every capability over new mounts and
// network state: kernel surface it has no need for).
func leaveNothingBehind() error {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("closing inherited descriptors: %w", err)
	}
	// (Where a system-call filter refuses keyctl, the run cannot reach a
	// keyring either: the filter is its too.)
	if _, _, errno := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0); errno != 0 && errno != unix.EPERM && errno != unix.ENOSYS {
		return fmt.Errorf("a session keyring of its own: %w", errno)
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("no core dumps: %w", err)
	}
	// A limit of this user namespace, which its root may lower.
	if err := os.WriteFile("/proc/sys/user/max_user_namespaces", []byte("0"), 0); err != nil {
		return fmt.Errorf("no nested user namespaces: %w", err)
	}
	return nil
}

// Securebits (linux/securebits.h): uid 0 of the run's user namespace gains
// no capability by exec, and that cannot be undone.
const (
	secbitNoroot            = 1 << 0
	secbitNorootLocked      = 1 << 1
	secbitNoSetuidFixup     = 1 << 2
	secbitNoSetuidFixupLock = 1 << 3
	secbitKeepCapsLocked    = 1 << 5
	secbitNoCapAmbientRaise = 1 << 6
	secbitNoCapAmbientLock  = 1 << 7
)

// dropPrivileges leaves the run no capability, even in its own user
// namespace, and no way to gain one: an empty bounding set, securebits
// that make uid 0 ordinary, and no_new_privs.
func dropPrivileges() error {
	bits := secbitNoroot | secbitNorootLocked | secbitNoSetuidFixup | secbitNoSetuidFixupLock | secbitKeepCapsLocked | secbitNoCapAmbientRaise | secbitNoCapAmbientLock
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, uintptr(bits), 0, 0, 0); err != nil {
		return fmt.Errorf("securebits: %w", err)
	}
	for c := 0; ; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if err == unix.EINVAL && c > 0 {
				break // past the last capability this kernel knows
			}
			return fmt.Errorf("dropping capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("ambient capabilities: %w", err)
	}
	return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
}
