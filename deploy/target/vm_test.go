package target

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// machine is how one architecture's VM boots.
type machine struct {
	qemu    string
	args    []string // before -kernel
	console string   // the serial console's device in the VM
	timeout time.Duration
}

var machines = map[string]machine{
	"amd64": {qemu: "qemu-system-x86_64", args: []string{"-M", "q35"}, console: "ttyS0", timeout: 4 * time.Minute},
	// -cpu max with QEMU's own pointer-authentication algorithm: the
	// architected one (QARMA) costs the emulation dearly on every
	// function return of the kernel, which signs them.
	"arm64": {qemu: "qemu-system-aarch64", args: []string{"-M", "virt", "-cpu", "max,pauth-impdef=on"}, console: "ttyAMA0", timeout: 15 * time.Minute},
}

// The test project's scenarios (cmd/lake-standin), by verify target.
var scenarios = map[string]map[string]any{
	"Proving.Basic":  {"transcript": "01-clean-build"},
	"Standin.Hog":    {"action": "memory"},
	"Standin.Fork":   {"action": "fork"},
	"Standin.Loop":   {"action": "loop"},
	"Standin.Escape": {"action": "escape"},
	"Standin.Probe":  {"action": "probe"}, // the sandbox issue's probes, for check sandbox-probes:
	"Standin.Probe2": {"action": "probe"}, // two targets, or two users' identical jobs would share one run
}

// dropIn is the only change to the shipped units: test settings. hqd dev
// (files in the data dir, the dev identity provider) with a static TLS
// certificate, as the host serves TLS (and a reload has certificates to
// reload); the redirect listener on port 80 as on the host, which the
// unit's CAP_NET_BIND_SERVICE allows; the stand-in lake; small limits.
const dropIn = `# make test-target's settings (deploy/target); the unit itself is as shipped.
[Service]
ExecStart=
ExecStart=/usr/local/bin/hqd dev --addr=127.0.0.1:8080
Environment=HQD_DATA_DIR=/var/lib/hqd HQD_HTTP_ADDR=127.0.0.1:80
Environment=HQD_TLS_CERT_FILE=/etc/hqd/tls/cert.pem HQD_TLS_KEY_FILE=/etc/hqd/tls/key.pem
Environment=HQD_LAKE_BIN=/opt/lake/bin/lake HQD_VERIFIER_DIR=/srv/lake/proving
Environment=HQD_JOB_MEMORY=64MiB HQD_JOB_PIDS=32 HQD_JOB_TIMEOUT=5s HQD_SHUTDOWN_GRACE=5s
`

// checkUnit runs the checker once hqd is up, then powers the VM off.
const checkUnit = `[Unit]
Description=make test-target: check hqd from inside the VM
After=hqd.service
Wants=hqd.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStartPre=-/usr/local/bin/hqd-target-debug
ExecStart=/usr/local/bin/hqd-target-check --console=/dev/%s --check-timeout=%s

[Install]
WantedBy=multi-user.target
`

// initScript is the VM's first process. The kernel unpacks the initramfs
// into its rootfs, which pivot_root(2) cannot leave (so sandboxes built
// like containers fail there, and would not on the host): copy it into a
// tmpfs and make that the root, as the host's disk is, then start systemd.
const initScript = `#!/bin/sh
mount -t tmpfs -o mode=0755,size=80% tmpfs /mnt
for d in /*; do
	case $d in /mnt | /proc | /sys | /run | /tmp) ;; *) cp -a "$d" /mnt/ ;; esac
done
mkdir -p /mnt/mnt /mnt/proc /mnt/sys /mnt/run /mnt/tmp && chmod 1777 /mnt/tmp
exec switch_root /mnt /sbin/init
`

// Units the VM does not need, masked: consoles that would write over the
// report, and timers.
var masked = []string{"getty@tty1.service", "serial-getty@ttyS0.service", "serial-getty@ttyAMA0.service",
	"apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer", "fstrim.timer"}

// Kernel modules copied into the VM (the rest stay in the cache): overlay
// for the job sandbox's build-output overlay. Everything else the VM
// needs is built into the cloud kernel.
var modules = []string{"kernel/fs/overlayfs"}

func repoRoot() string { return filepath.Join("..", "..") }

func cacheDir() string {
	if d := os.Getenv("HQD_TARGET_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "hqd", "target")
}

type inputs struct{ kernel, modules, rootfs string }

// prepare installs the host tools and fetches or builds the cached kernel
// and root file system (prepare.sh).
func prepare(t *testing.T, arch string) inputs {
	cmd := exec.Command("bash", "prepare.sh", arch)
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), "HQD_TARGET_CACHE="+cacheDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("prepare.sh %s: %v", arch, err)
	}
	var in inputs
	for _, l := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "KERNEL":
			in.kernel = v
		case "MODULES":
			in.modules = v
		case "ROOTFS":
			in.rootfs = v
		}
	}
	if in.kernel == "" || in.modules == "" || in.rootfs == "" {
		t.Fatalf("prepare.sh %s printed %q", arch, out)
	}
	return in
}

type binaries struct{ hqd, lake, check string }

// build compiles hqd, the stand-in lake and the checker for arch, static.
// hqd embeds no separate job helper (make build's): it runs itself as one.
func build(t *testing.T, arch string) binaries {
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", dir+"/", "./cmd/hqd", "./cmd/lake-standin", "./deploy/target/check")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for %s: %v\n%s", arch, err, out)
	}
	return binaries{filepath.Join(dir, "hqd"), filepath.Join(dir, "lake-standin"), filepath.Join(dir, "check")}
}

// assemble makes the VM's initramfs: the cached root file system, hqd
// installed by install.sh, the test's drop-in, the stand-in lake and its
// project, the checker and its unit.
func assemble(t *testing.T, m machine, in inputs, bins binaries) string {
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	write := func(path string, mode os.FileMode, data string) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	run("mkdir", "-p", root)
	run("tar", "--numeric-owner", "-xpf", in.rootfs, "-C", root)

	run("install", "-D", "-m", "0755", bins.hqd, filepath.Join(root, "usr/local/bin/hqd"))
	run(filepath.Join(repoRoot(), "deploy/systemd/install.sh"), root)
	uid, gid := lookupHQD(t, root)
	var units []string
	for _, ext := range []string{"service", "socket", "slice"} {
		m, _ := filepath.Glob(filepath.Join(repoRoot(), "deploy/systemd/*."+ext))
		units = append(units, m...)
	}
	for _, u := range units { // as shipped: only the drop-in below differs
		want, _ := os.ReadFile(u)
		got, err := os.ReadFile(filepath.Join(root, "etc/systemd/system", filepath.Base(u)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("install.sh did not install %s as shipped (%v)", filepath.Base(u), err)
		}
	}

	write("etc/systemd/system/hqd.service.d/test.conf", 0o644, dropIn)
	run("install", "-D", "-m", "0755", bins.lake, filepath.Join(root, "opt/lake/bin/lake"))
	project := itest.LakeProject(t, scenarios)
	run("mkdir", "-p", filepath.Join(root, "srv/lake/proving"))
	run("cp", "-a", project+"/.", filepath.Join(root, "srv/lake/proving"))
	run("chown", "-R", fmt.Sprintf("%d:%d", uid, gid), filepath.Join(root, "srv/lake"))
	certPEM, keyPEM := selfSigned(t)
	run("install", "-d", "-m", "0750", "-o", "0", "-g", strconv.Itoa(gid), filepath.Join(root, "etc/hqd/tls"))
	write("etc/hqd/tls/cert.pem", 0o640, certPEM)
	write("etc/hqd/tls/key.pem", 0o640, keyPEM)
	run("chown", fmt.Sprintf("0:%d", gid), filepath.Join(root, "etc/hqd/tls/cert.pem"), filepath.Join(root, "etc/hqd/tls/key.pem"))

	run("install", "-D", "-m", "0755", bins.check, filepath.Join(root, "usr/local/bin/hqd-target-check"))
	perCheck := "60s"
	if m.timeout > 5*time.Minute {
		perCheck = "4m"
	}
	// HQD_TARGET_DEBUG names a script to run in the VM before the checks,
	// for investigating a failure: its output is in the journal, whose end
	// the report carries when a check fails.
	if dbg := os.Getenv("HQD_TARGET_DEBUG"); dbg != "" {
		run("install", "-D", "-m", "0755", dbg, filepath.Join(root, "usr/local/bin/hqd-target-debug"))
	}
	write("etc/systemd/system/hqd-target-check.service", 0o644, fmt.Sprintf(checkUnit, m.console, perCheck))
	run("mkdir", "-p", filepath.Join(root, "etc/systemd/system/multi-user.target.wants"))
	run("ln", "-sf", "/etc/systemd/system/hqd-target-check.service", filepath.Join(root, "etc/systemd/system/multi-user.target.wants/hqd-target-check.service"))
	for _, u := range masked {
		run("ln", "-sf", "/dev/null", filepath.Join(root, "etc/systemd/system", u))
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	write("etc/machine-id", 0o444, hex.EncodeToString(id)+"\n") // not a first boot
	write("etc/hostname", 0o644, "hqd-target\n")
	write("init", 0o755, initScript)

	kdirs, _ := os.ReadDir(in.modules)
	for _, k := range kdirs {
		dst := filepath.Join(root, "usr/lib/modules", k.Name())
		run("mkdir", "-p", dst)
		idx, _ := filepath.Glob(filepath.Join(in.modules, k.Name(), "modules.*"))
		run("cp", append(idx, dst)...)
		for _, mod := range modules {
			run("mkdir", "-p", filepath.Join(dst, filepath.Dir(mod)))
			run("cp", "-a", filepath.Join(in.modules, k.Name(), mod), filepath.Join(dst, filepath.Dir(mod)))
		}
	}

	initrd := filepath.Join(tmp, "initrd.gz")
	cmd := exec.Command("bash", "-o", "pipefail", "-c", "find . | cpio -o -H newc --quiet | gzip -1 > "+initrd)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("making the initramfs: %v\n%s", err, out)
	}
	_ = os.RemoveAll(root) // as root: t.TempDir's cleanup would do it too, later
	return initrd
}

// lookupHQD reads the uid and gid install.sh gave hqd in root.
func lookupHQD(t *testing.T, root string) (uid, gid int) {
	f, err := os.Open(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) > 3 && p[0] == "hqd" {
			uid, _ = strconv.Atoi(p[2])
			gid, _ = strconv.Atoi(p[3])
			return uid, gid
		}
	}
	t.Fatal("install.sh made no hqd user")
	return 0, 0
}

// selfSigned is the certificate hqd serves in the VM, valid for 127.0.0.1;
// the checker trusts it as its own root.
func selfSigned(t *testing.T) (certPEM, keyPEM string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "hqd-target"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(48 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// boot runs the VM until it powers off or its time is up, with its console
// in logPath, and returns what the console printed.
func boot(m machine, kernel, initrd, logPath string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	defer cancel()
	f, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	args := append(append([]string{}, m.args...),
		"-smp", "2", "-m", "2048", "-nographic", "-no-reboot", "-nic", "none",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console="+m.console+" rdinit=/init panic=-1 oops=panic quiet loglevel=3 systemd.show_status=0 systemd.unified_cgroup_hierarchy=1")
	version, _ := exec.Command(m.qemu, "--version").Output()
	fmt.Fprintf(f, "%s %s\n", m.qemu, strings.Join(args, " "))
	fmt.Fprintf(f, "%s\n", bytes.TrimSpace(version))
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, m.qemu, args...)
	cmd.Stdout = io.MultiWriter(f, &buf)
	cmd.Stderr = cmd.Stdout
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("the VM did not power off within %s", m.timeout)
	}
	return buf.String(), err
}
