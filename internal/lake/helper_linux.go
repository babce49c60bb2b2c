package lake

import (
	"bytes"
	"debug/elf"
	"embed"
	"fmt"
	"os"
	"os/exec"
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
func Helper(self string) (path, what string) {
	b, err := helperDir.ReadFile("helper/hqd-job-exec")
	if err != nil {
		return self, "hqd itself (this build embeds no hqd-job-exec)"
	}
	return helperFrom(b, self)
}

func helperFrom(b []byte, self string) (path, what string) {
	if f, err := elf.NewFile(bytes.NewReader(b)); err != nil || f.Machine != elfMachine[runtime.GOARCH] {
		return self, "hqd itself (the embedded hqd-job-exec is not for " + runtime.GOARCH + ")"
	}
	fd, err := unix.MemfdCreate("hqd-job-exec", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return self, fmt.Sprintf("hqd itself (memfd_create: %v)", err)
	}
	f := os.NewFile(uintptr(fd), "hqd-job-exec")
	if _, err := f.Write(b); err != nil {
		f.Close()
		return self, fmt.Sprintf("hqd itself (writing the helper: %v)", err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		f.Close()
		return self, fmt.Sprintf("hqd itself (sealing the helper: %v)", err)
	}
	// The child resolves /proc/self/fd/N in its own fd table, which it got
	// from us; close-on-exec closes the file only once the exec succeeded.
	path = fmt.Sprintf("/proc/self/fd/%d", fd)
	if out, err := exec.Command(path, "job-exec", "-check").CombinedOutput(); err != nil {
		f.Close()
		return self, fmt.Sprintf("hqd itself (the embedded helper does not run here: %v %s)", err, bytes.TrimSpace(out))
	}
	heldHelpers = append(heldHelpers, f) // open for the daemon's life
	return path, fmt.Sprintf("embedded hqd-job-exec (%d KB, sealed memfd)", len(b)>>10)
}

var heldHelpers []*os.File

var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
