package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantapix/hqd/internal/itest"
)

// TestSSMSettings runs `hqd ssm-settings` as the host's drop-in does,
// against a stand-in for SSM (no SSM runs here): the file follows the
// parameters at every run; when SSM cannot be reached the last file is
// kept (hqd starts with it), and without one the command fails.
func TestSSMSettings(t *testing.T) {
	params := map[string]string{"/hqd/HQD_BUCKET": "hq-uploads", "/hqd/HQD_DOMAINS": "api.example.com"}
	srv := itest.StandInSSM(t, params)
	out := filepath.Join(t.TempDir(), "hqd.env")
	env := func(endpoint string) []string {
		return []string{"AWS_ENDPOINT_URL_SSM=" + endpoint, "AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=AKID", "AWS_SECRET_ACCESS_KEY=SECRET", "AWS_EC2_METADATA_DISABLED=true"}
	}
	runIt := func(endpoint string) (string, error) {
		cmd := execHQD(env(endpoint), "ssm-settings", "--path=/hqd/", "--out="+out)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if msg, err := runIt(srv.URL); err != nil {
		t.Fatalf("ssm-settings: %v\n%s", err, msg)
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), "HQD_BUCKET=\"hq-uploads\"\n") || !strings.Contains(string(b), "HQD_DOMAINS=\"api.example.com\"\n") {
		t.Fatalf("settings file:\n%s", b)
	}
	// A changed parameter reaches the file at the next start.
	srv.Set("/hqd/HQD_BUCKET", "hq-uploads-2")
	if msg, err := runIt(srv.URL); err != nil {
		t.Fatalf("second run: %v\n%s", err, msg)
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "HQD_BUCKET=\"hq-uploads-2\"\n") {
		t.Errorf("the change did not reach the file:\n%s", b)
	}
	// SSM gone: the file is kept, and the start goes on.
	down := fmt.Sprintf("http://127.0.0.1:%d", itest.FreePort(t))
	msg, err := runIt(down)
	if err != nil || !strings.Contains(msg, "keeping") {
		t.Errorf("with SSM down and a file: %v\n%s", err, msg)
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "hq-uploads-2") {
		t.Errorf("the kept file changed:\n%s", b)
	}
	// SSM gone and no settings (no file, or the empty one install.sh
	// leaves): hqd must not start without settings.
	_ = os.Remove(out)
	if msg, err := runIt(down); err == nil {
		t.Errorf("with SSM down and no file the command succeeded:\n%s", msg)
	}
	_ = os.WriteFile(out, nil, 0o640)
	if msg, err := runIt(down); err == nil {
		t.Errorf("with SSM down and an empty file the command succeeded:\n%s", msg)
	}
}
