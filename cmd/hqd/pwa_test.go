package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/quantapix/hqd/internal/itest"
	"github.com/quantapix/hqd/internal/web"
)

// TestPWA runs the browser tests (web/e2e/run.mjs: Playwright driving
// Debian's Chromium) against hqd dev serving the embedded app, with the
// stand-in lake for the verifier and the evaluator. `make test` builds the
// app and installs Chromium first; without them this test fails.
func TestPWA(t *testing.T) {
	if !web.Built() {
		t.Fatal("this binary carries no PWA: run `make web` (make test does) before go test")
	}
	root, _ := filepath.Abs("../..")
	if _, err := os.Stat(filepath.Join(root, "web", "node_modules", "playwright-core")); err != nil {
		t.Fatal("web/node_modules is missing: run `make web` (npm ci)")
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("Chromium is missing: scripts/tools.sh chromium installs it (make test does)")
	}
	// Proving.Slow runs ~5 s (a reload mid-run); Slow1–5 long enough to be
	// cancelled by the test before they end.
	scenarios := map[string]map[string]any{"Proving.Basic": {"transcript": "01-clean-build", "delayMs": 30},
		"Proving.Slow": {"transcript": "01-clean-build", "delayMs": 400}}
	for i := 1; i <= 5; i++ {
		scenarios[fmt.Sprintf("Proving.Slow%d", i)] = map[string]any{"transcript": "01-clean-build", "delayMs": 5000}
	}
	verifier := itest.LakeProject(t, scenarios)
	evaluator := itest.LakeProject(t, map[string]map[string]any{"exe:evaluate": {"action": "echo-stdin"}})
	h := startHQD(t, []string{"HQD_LAKE_BIN=" + itest.Standin(t), "HQD_VERIFIER_DIR=" + verifier, "HQD_EVALUATOR_DIR=" + evaluator},
		"dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+t.TempDir())
	h.waitReady()
	// The screenshots go to a temporary directory, so that make test leaves
	// the tree as it was; HQD_SCREENSHOTS=1 writes docs/screenshots.
	shots := t.TempDir()
	if os.Getenv("HQD_SCREENSHOTS") == "1" {
		shots = filepath.Join(root, "docs", "screenshots")
	}
	if out, err := webScript(root, "e2e/run.mjs", h.URL, shots); err != nil {
		t.Fatalf("browser tests failed: %v\n%s", err, out)
	} else {
		t.Logf("browser tests:\n%s", out)
	}
}

// webScript runs one of web/e2e's Node scripts.
func webScript(root, script string, args ...string) ([]byte, error) {
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Dir = filepath.Join(root, "web")
	return cmd.CombinedOutput()
}

// TestLighthouse runs Lighthouse (web/e2e/lighthouse.mjs: the npm package
// driving Debian's Chromium) on the sign-in screen and the signed-in files
// screen of hqd dev: every category at least 95. make docs keeps the
// scores in docs/LIGHTHOUSE.md (HQD_SCREENSHOTS=1); make test writes them
// to a temporary file.
func TestLighthouse(t *testing.T) {
	if !web.Built() {
		t.Fatal("this binary carries no PWA: run `make web` (make test does) before go test")
	}
	root, _ := filepath.Abs("../..")
	h := startHQD(t, nil, "dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+t.TempDir())
	h.waitReady()
	out := filepath.Join(t.TempDir(), "LIGHTHOUSE.md")
	if os.Getenv("HQD_SCREENSHOTS") == "1" {
		out = filepath.Join(root, "docs", "LIGHTHOUSE.md")
	}
	b, err := webScript(root, "e2e/lighthouse.mjs", h.URL, out)
	t.Logf("lighthouse:\n%s", b)
	if err != nil {
		t.Fatalf("Lighthouse: a score under 95, or the run failed: %v", err)
	}
}
