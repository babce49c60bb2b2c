package deploy

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// distroless is the runtime stage's base; no registry is reachable here,
// so a stand-in with what hqd needs of it is made and tagged with its name.
const distroless = "gcr.io/distroless/static-debian12:nonroot"

// TestImage builds the Dockerfile's runtime stage with podman (runc) from
// the binary make build made (HQD_IMAGE_BIN; built here when unset) on a
// local stand-in for distroless's static image — the same users, no shell —
// and runs it as it ships, as its user 65532: hqd starts, writes its state
// under /var/lib/hqd, and answers /readyz. (It exited on EACCES when the
// image had no /var/lib/hqd.)
func TestImage(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Fatal("podman is missing: scripts/tools.sh podman installs it (make test does)")
	}
	root, _ := filepath.Abs("..")
	bin := os.Getenv("HQD_IMAGE_BIN")
	if bin == "" {
		bin = hqdBinary(t)
	}
	pm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(podman, append([]string{"--runtime", "runc"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}

	base := filepath.Join(t.TempDir(), "base.tar")
	if err := os.WriteFile(base, standInBase(t), 0o600); err != nil {
		t.Fatal(err)
	}
	pm("import", base, distroless)

	// The build context: the binary and an empty state folder, nothing else.
	ctx := t.TempDir()
	if err := os.Mkdir(filepath.Join(ctx, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatalf("the binary to ship (HQD_IMAGE_BIN): %v", err)
	}
	_ = os.WriteFile(filepath.Join(ctx, "hqd"), data, 0o755)
	tag := fmt.Sprintf("localhost/hqd-test-image:%d", time.Now().UnixNano())
	pm("build", "--pull=never", "--target", "runtime", "--build-arg", "HQD_BIN=prebuilt",
		"-f", filepath.Join(root, "Dockerfile"), "-t", tag, ctx)
	defer exec.Command(podman, "rmi", "-f", tag).Run()

	if u := pm("image", "inspect", "--format", "{{.Config.User}}", tag); u != "65532:65532" {
		t.Errorf("the image runs as %q, want 65532:65532", u)
	}
	// The state folder as shipped: there, and the runtime user's.
	ls := pm("run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"--entrypoint", "/usr/local/bin/hqd", tag, "version")
	if !strings.HasPrefix(ls, "hqd ") {
		t.Errorf("hqd version in the image: %q", ls)
	}
	created := pm("create", tag)
	defer exec.Command(podman, "rm", "-f", created).Run()
	export, err := exec.Command(podman, "export", created).Output()
	if err != nil {
		t.Fatalf("podman export: %v", err)
	}
	if h := tarEntry(export, "var/lib/hqd/"); h == nil || h.Typeflag != tar.TypeDir || h.Uid != 65532 {
		t.Errorf("/var/lib/hqd in the image: %+v, want a folder of uid 65532", h)
	}
	if h := tarEntry(export, "bin/sh"); h != nil {
		t.Error("the stand-in base has a shell: distroless has none")
	}

	// Run it as shipped (its user, its entrypoint), in dev mode so that it
	// needs no AWS: the file store lives in the state folder.
	port := itest.FreePort(t)
	name := fmt.Sprintf("hqd-test-%d", port)
	pm("run", "-d", "--name", name, "--network", "host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		tag, "dev", fmt.Sprintf("--addr=127.0.0.1:%d", port), "--metrics-addr=")
	defer exec.Command(podman, "rm", "-f", name).Run()
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return
		}
		last = fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
	logs, _ := exec.Command(podman, "logs", name).CombinedOutput()
	t.Fatalf("the image never answered /readyz 200 (last: %s)\n%s", last, logs)
}

// standInBase is a root file system with what hqd takes from distroless's
// static image: its users and groups (nonroot is 65532), CA certificates,
// /tmp and the home folder — and, like it, no shell.
func standInBase(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, uid int) {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: uid, ModTime: time.Unix(0, 0)})
	}
	file := func(name string, data []byte) {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)})
		_, _ = tw.Write(data)
	}
	for _, d := range []string{"etc/", "etc/ssl/", "etc/ssl/certs/", "var/", "var/lib/", "usr/", "usr/local/", "usr/local/bin/", "root/", "home/"} {
		dir(d, 0o755, 0)
	}
	dir("tmp/", 0o1777, 0)
	dir("home/nonroot/", 0o700, 65532)
	file("etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"))
	file("etc/group", []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"))
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	file("etc/ssl/certs/ca-certificates.crt", certs)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarEntry finds name's header in a tar archive.
func tarEntry(archive []byte, name string) *tar.Header {
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err != nil {
			return nil
		}
		if strings.TrimPrefix(h.Name, "./") == name || strings.TrimPrefix(h.Name, "./")+"/" == name {
			return h
		}
	}
}

// hqdBinary builds hqd as make build does (static, the app embedded when
// make web has run) into the test's temp dir.
func hqdBinary(t *testing.T) string {
	t.Helper()
	root, _ := filepath.Abs("..")
	bin := filepath.Join(t.TempDir(), "hqd")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/hqd")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinaryDeps: the test-only modules in go.mod (HCL and cty for these
// tests, gonum's plot for bench's charts) are not linked into hqd. They
// stay in the one module on purpose: Go links only what the binary
// imports, and nested modules would split go test ./..., -race, vet and
// the tidy check into three runs for no change to what ships.
func TestBinaryDeps(t *testing.T) {
	out, err := exec.Command("go", "version", "-m", hqdBinary(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	for _, mod := range []string{"github.com/hashicorp/hcl", "github.com/zclconf/go-cty", "gonum.org/v1/plot", "codeberg.org/go-fonts", "codeberg.org/go-pdf"} {
		if strings.Contains(string(out), mod) {
			t.Errorf("hqd links %s, a test-only dependency", mod)
		}
	}
	if !strings.Contains(string(out), "github.com/caddyserver/certmagic") {
		t.Errorf("go version -m shows no dependencies:\n%s", out)
	}
}
