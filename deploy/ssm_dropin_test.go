package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSSMDropIn checks the EC2 host's drop-in (systemd/hqd-ssm.conf, which
// the host's user-data installs as hqd.service.d/ssm.conf): systemd accepts
// hqd.service with it, reads it (a missing binary named there fails the
// check), and it writes exactly the file the unit's EnvironmentFile= reads.
func TestSSMDropIn(t *testing.T) {
	unit, err := os.ReadFile("systemd/hqd.service")
	if err != nil {
		t.Fatal(err)
	}
	dropIn, err := os.ReadFile("systemd/hqd-ssm.conf")
	if err != nil {
		t.Fatal(err)
	}
	verify := func(bin string) string {
		dir := t.TempDir()
		_ = os.MkdirAll(filepath.Join(dir, "hqd.service.d"), 0o755)
		_ = os.WriteFile(filepath.Join(dir, "hqd.service"), bytes.ReplaceAll(unit, []byte("/usr/local/bin/hqd"), []byte("/bin/true")), 0o644)
		_ = os.WriteFile(filepath.Join(dir, "hqd.service.d", "ssm.conf"), bytes.ReplaceAll(dropIn, []byte("/usr/local/bin/hqd"), []byte(bin)), 0o644)
		out, _ := run(t, dir, "systemd-analyze", "verify", "hqd.service")
		return strings.TrimSpace(out)
	}
	if out := verify("/bin/true"); out != "" {
		t.Errorf("systemd-analyze verify hqd.service with the drop-in:\n%s", out)
	}
	if out := verify("/nonexistent/hqd"); !strings.Contains(out, "/nonexistent/hqd") {
		t.Errorf("the drop-in was not read by systemd (verify said %q)", out)
	}
	env := regexp.MustCompile(`(?m)^EnvironmentFile=-?(\S+)$`).FindSubmatch(unit)
	pre := regexp.MustCompile(`(?m)^ExecStartPre=\+/usr/local/bin/hqd ssm-settings --path=/hqd/ --out=(\S+)$`).FindSubmatch(dropIn)
	if env == nil || pre == nil || string(env[1]) != string(pre[1]) {
		t.Errorf("the drop-in must run `hqd ssm-settings --out=` on the unit's EnvironmentFile (%q vs %q)", env, pre)
	}
}
