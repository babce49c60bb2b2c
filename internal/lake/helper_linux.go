package lake

import (
	"bytes"
	"debug/elf"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// The job helper (package jobexec) built on its own as hqd-job-exec, put
// here by `make build` before hqd is compiled. A build without it runs
// hqd itself as the helper: the same code, about 5 ms slower to start.
//
//go:embed all:helper
var helperDir embed.FS

// Helper returns the job helper to run, and what it is. It prefers the
// embedded hqd-job-exec, handed to the kernel from a sealed memory file
// (memfd), so nothing on disk can be swapped in; it falls back to self
// (hqd, run as "hqd job-exec") when there is none, it was built for another
// machine, or this system will not run it (a seccomp filter, noexec memfds).
// A run's helper starts as the run's own uid, so self must be something
// any uid can run; where it is not (a binary in a private directory), a
// sealed copy of it is used.
func Helper(self string) (path, what string) {
	b, err := helperDir.ReadFile("helper/hqd-job-exec")
	if err != nil {
		return fallback(self, "this build embeds no hqd-job-exec")
	}
	return helperFrom(b, self)
}

func helperFrom(b []byte, self string) (path, what string) {
	if f, err := elf.NewFile(bytes.NewReader(b)); err != nil || f.Machine != elfMachine[runtime.GOARCH] {
		return fallback(self, "the embedded hqd-job-exec is not for "+runtime.GOARCH)
	}
	path, err := sealed(b, "hqd-job-exec")
	if err != nil {
		return fallback(self, err.Error())
	}
	return path, fmt.Sprintf("embedded hqd-job-exec (%d KB, sealed memfd)", len(b)>>10)
}

// fallback is hqd itself as the helper, or a sealed copy of it where
// another uid could not run it.
func fallback(self, why string) (path, what string) {
	if anyoneCanRun(self) {
		return self, "hqd itself (" + why + ")"
	}
	b, err := os.ReadFile(self)
	if err == nil {
		path, err = sealed(b, "hqd")
	}
	if err != nil {
		return self, fmt.Sprintf("hqd itself (%s; a copy others can run: %v)", why, err)
	}
	return path, "a sealed copy of hqd itself (" + why + "; " + self + " is not for every uid to run)"
}

// anyoneCanRun says whether every uid may run the file at p: every
// directory above it searchable, the file readable and executable.
func anyoneCanRun(p string) bool {
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm()&0o005 != 0o005 {
		return false
	}
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == "/" || d == "." {
			return true
		}
	}
}

// sealed hands b to the kernel as a sealed memory file and answers the
// path a child of ours runs it by. It is run once ("-check") to be sure
// this system runs it.
func sealed(b []byte, name string) (string, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return "", fmt.Errorf("writing the helper: %w", err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		f.Close()
		return "", fmt.Errorf("sealing the helper: %w", err)
	}
	// The child resolves /proc/self/fd/N in its own fd table, which it got
	// from us; close-on-exec closes the file only once the exec succeeded.
	path := fmt.Sprintf("/proc/self/fd/%d", fd)
	if out, err := exec.Command(path, "job-exec", "-check").CombinedOutput(); err != nil {
		f.Close()
		return "", fmt.Errorf("the helper does not run here: %v %s", err, bytes.TrimSpace(out))
	}
	heldHelpers = append(heldHelpers, f) // open for the daemon's life
	return path, nil
}

var heldHelpers []*os.File

var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
