package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFullDisk puts the dir store on a 2 MiB tmpfs and fills it: the
// write that does not fit answers 507 storage_full, the file it would
// have replaced is intact, no temp file is left behind, and writes that
// fit work again straight away. Mounting needs root (as CI has).
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs (this test needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	h := startHQD(t, nil, "dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+dir)
	h.waitReady()
	tok := devSignIn(t, h, "full@example.com", "Passw0rd!").AccessToken

	old := []byte("the old contents\n")
	if a := do(t, "PUT", h.URL+"/api/files/notes.md?raw=1", tok, bytes.NewReader(old)); a.status != 200 {
		t.Fatalf("first PUT = %d %s", a.status, a.body)
	}
	big := bytes.Repeat([]byte("x"), 3<<20)
	a := do(t, "PUT", h.URL+"/api/files/notes.md?raw=1", tok, bytes.NewReader(big))
	if a.status != 507 || !strings.Contains(string(a.body), `"code":"storage_full"`) {
		t.Errorf("PUT beyond the disk = %d %s, want 507 storage_full", a.status, a.body)
	}
	if a := do(t, "GET", h.URL+"/api/files/notes.md?raw=1", tok, nil); a.status != 200 || !bytes.Equal(a.body, old) {
		t.Errorf("after the failed write the file reads %d %q", a.status, a.body)
	}
	tmps, _ := os.ReadDir(filepath.Join(dir, "files", ".tmp"))
	if len(tmps) != 0 {
		t.Errorf("temp files left behind: %d", len(tmps))
	}
	if a := do(t, "PUT", h.URL+"/api/files/small.md?raw=1", tok, strings.NewReader("fits")); a.status != 200 {
		t.Errorf("a small write after the full one = %d %s", a.status, a.body)
	}
	if code, err := h.stop(10 * time.Second); err != nil || code != 0 {
		t.Errorf("SIGTERM: exit %d, %v", code, err)
	}
}
