// Package deploy holds no code: its tests check the Terraform and the
// systemd unit with the tools that run offline here (terraform fmt,
// tflint, tfsec, systemd-analyze) and assert the invariants the seeds
// promise by reading every .tf file. terraform validate needs provider
// plugins, which cannot be downloaded here, so it is not run.
package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/quantapix/hqd/internal/itest"
)

func run(t *testing.T, dir string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "TF_IN_AUTOMATION=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestTerraformFmt(t *testing.T) {
	if out, err := run(t, "terraform", "terraform", "fmt", "-check", "-recursive", "-diff"); err != nil {
		t.Errorf("terraform fmt -check: %v\n%s", err, out)
	}
}

func dirs(t *testing.T) []string {
	var out []string
	for _, pat := range []string{"terraform/modules/*", "terraform/envs/*"} {
		m, _ := filepath.Glob(pat)
		out = append(out, m...)
	}
	if len(out) < 13 {
		t.Fatalf("found %d modules and envs", len(out))
	}
	return out
}

func TestTflint(t *testing.T) {
	tflint := itest.Tool(t, "tflint")
	cfg, _ := filepath.Abs("terraform/.tflint.hcl")
	for _, d := range dirs(t) {
		if out, err := run(t, d, tflint, "--config="+cfg, "--format=compact"); err != nil {
			t.Errorf("tflint %s: %v\n%s", d, err, out)
		}
	}
}

func TestTfsec(t *testing.T) {
	tfsec := itest.Tool(t, "tfsec")
	out, _ := run(t, "terraform", tfsec, ".", "--no-color", "--format=json", "--soft-fail")
	var res struct {
		Results []struct {
			LongID   string `json:"long_id"`
			Severity string `json:"severity"`
			Location struct {
				Filename  string `json:"filename"`
				StartLine int    `json:"start_line"`
			} `json:"location"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil {
		t.Fatalf("tfsec output: %v\n%s", err, out)
	}
	// No finding is left: HIGH and CRITICAL are fixed, lower ones ignored
	// inline with the reason.
	for _, r := range res.Results {
		t.Errorf("tfsec %s %s at %s:%d", r.Severity, r.LongID, r.Location.Filename, r.Location.StartLine)
	}
}

// TestSystemdUnits: hqd's unit, and the socket and template that run each
// job in a unit of its own (docs/SANDBOX.md), pass systemd-analyze verify;
// hqd's exposure stays at most 2.0 and it holds no privilege for jobs.
func TestSystemdUnits(t *testing.T) {
	dir := t.TempDir()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	units := map[string][]byte{"hqd.service": read("hqd.service"), "hqd-job.socket": read("hqd-job.socket"), "hqd-job@.service": read("hqd-job@.service")}
	for name, b := range units {
		// verify checks ExecStart exists: point it at a binary that does.
		if err := os.WriteFile(filepath.Join(dir, name), bytes.ReplaceAll(b, []byte("/usr/local/bin/hqd"), []byte("/bin/true")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A template is verified as an instance of it.
	if err := os.Link(filepath.Join(dir, "hqd-job@.service"), filepath.Join(dir, "hqd-job@0-1-2.service")); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"hqd.service", "hqd-job.socket", "hqd-job@0-1-2.service"} {
		if out, err := run(t, dir, "systemd-analyze", "verify", u); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
		}
	}
	exposure := func(unit string) float64 {
		out, err := run(t, dir, "systemd-analyze", "security", "--offline=true", unit)
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
		}
		f, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("%s: exposure %s", unit, m[1])
		return f
	}
	if e := exposure("hqd.service"); e > 2.0 {
		t.Errorf("hqd.service's exposure is %.1f, over 2.0", e)
	}
	if e := exposure("hqd-job@0-1-2.service"); e > 2.5 {
		t.Errorf("hqd-job@.service's exposure is %.1f, over 2.5", e)
	}
	has := func(unit string, lines ...string) {
		for _, want := range lines {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(units[unit]) {
				t.Errorf("%s lacks the line %s", unit, want)
			}
		}
	}
	has("hqd.service", "Type=notify", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "StateDirectory=hqd",
		"User=hqd", "NoNewPrivileges=yes", "RestrictNamespaces=yes", "ProtectControlGroups=yes", "Wants=network-online.target hqd-job.socket")
	if bytes.Contains(units["hqd.service"], []byte("Delegate=")) {
		t.Error("hqd.service delegates cgroups: jobs are limited in their own units")
	}
	has("hqd-job.socket", "ListenStream=/run/hqd-job.sock", "Accept=yes", "SocketUser=hqd", "SocketMode=0600")
	has("hqd-job@.service", "ExecStart=/usr/local/bin/hqd job-run", "StandardInput=socket", "DynamicUser=yes", "User=hqd-job-%i", "Delegate=yes",
		"PrivateNetwork=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=", "ProtectSystem=strict", "ProtectHome=yes")
}

// block is one resource, data source or module block of a .tf file.
type block struct {
	file string
	kind string // resource, data, module
	typ  string // e.g. aws_s3_bucket
	name string
	body *hclsyntax.Body
	src  []byte
}

func parseAll(t *testing.T) []block {
	var out []block
	p := hclparse.NewParser()
	files, _ := filepath.Glob("terraform/*/*/*.tf")
	for _, f := range files {
		src, _ := os.ReadFile(f)
		hf, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", f, diags.Error())
		}
		for _, b := range hf.Body.(*hclsyntax.Body).Blocks {
			if b.Type != "resource" && b.Type != "data" {
				continue
			}
			out = append(out, block{file: f, kind: b.Type, typ: b.Labels[0], name: b.Labels[1], body: b.Body, src: src[b.Range().Start.Byte:b.Range().End.Byte]})
		}
	}
	return out
}

// literal is an attribute's value when it is a constant.
func literal(b *hclsyntax.Body, path ...string) (cty.Value, bool) {
	for _, p := range path[:len(path)-1] {
		var next *hclsyntax.Body
		for _, sub := range b.Blocks {
			if sub.Type == p {
				next = sub.Body
			}
		}
		if next == nil {
			return cty.NilVal, false
		}
		b = next
	}
	a, ok := b.Attributes[path[len(path)-1]]
	if !ok {
		return cty.NilVal, false
	}
	v, diags := a.Expr.Value(&hcl.EvalContext{})
	return v, !diags.HasErrors()
}

func TestTerraformInvariants(t *testing.T) {
	all := parseAll(t)
	byType := map[string][]block{}
	for _, b := range all {
		byType[b.typ] = append(byType[b.typ], b)
	}
	has := func(typ, file, bucketRef string) bool {
		for _, b := range byType[typ] {
			if b.file == file && strings.Contains(string(b.src), bucketRef) {
				return true
			}
		}
		return false
	}
	for _, b := range byType["aws_s3_bucket"] {
		ref := "aws_s3_bucket." + b.name + "."
		if !has("aws_s3_bucket_public_access_block", b.file, ref) {
			t.Errorf("%s: bucket %s has no public access block", b.file, b.name)
		}
		if !has("aws_s3_bucket_server_side_encryption_configuration", b.file, ref) {
			t.Errorf("%s: bucket %s has no encryption", b.file, b.name)
		}
	}
	for _, b := range byType["aws_s3_bucket_public_access_block"] {
		for _, a := range []string{"block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"} {
			if v, ok := literal(b.body, a); !ok || v != cty.True {
				t.Errorf("%s: %s.%s is not true", b.file, b.name, a)
			}
		}
	}
	if len(byType["aws_instance"]) == 0 {
		t.Fatal("no instance")
	}
	for _, b := range byType["aws_instance"] {
		if v, ok := literal(b.body, "metadata_options", "http_tokens"); !ok || v.AsString() != "required" {
			t.Errorf("%s: IMDSv2 is not required", b.file)
		}
		if v, ok := literal(b.body, "root_block_device", "encrypted"); !ok || v != cty.True {
			t.Errorf("%s: the root volume is not encrypted", b.file)
		}
		if v, ok := literal(b.body, "disable_api_termination"); !ok || v != cty.True {
			t.Errorf("%s: no termination protection", b.file)
		}
	}
	for _, b := range byType["aws_ebs_volume"] {
		if v, ok := literal(b.body, "encrypted"); !ok || v != cty.True {
			t.Errorf("%s: volume %s is not encrypted", b.file, b.name)
		}
	}
	for _, b := range byType["aws_vpc_security_group_ingress_rule"] {
		from, ok1 := literal(b.body, "from_port")
		to, ok2 := literal(b.body, "to_port")
		if !ok1 || !ok2 || !from.Equals(to).True() {
			t.Errorf("%s: ingress %s is not one port", b.file, b.name)
			continue
		}
		port, _ := from.AsBigFloat().Int64()
		if port != 443 && port != 80 {
			t.Errorf("%s: ingress on port %d; only 443 (and 80) are open", b.file, port)
		}
		if port == 80 && !strings.Contains(string(b.src), "count") {
			t.Errorf("%s: port 80 is not optional", b.file)
		}
	}
	if len(byType["aws_security_group_rule"])+len(byType["aws_vpc_security_group_ingress_rule"]) == 0 {
		t.Error("no ingress rules found")
	}
	for _, b := range all {
		if bytes.Contains(b.src, []byte("from_port   = 22")) || bytes.Contains(b.src, []byte("from_port = 22")) {
			t.Errorf("%s: SSH is open", b.file)
		}
	}
	// IAM: a wildcard action or resource needs a written justification.
	wild := regexp.MustCompile(`(actions|resources|Action|Resource)\s*=\s*\[?[^\n]*"(\*|[a-z0-9-]+:\*)"`)
	for _, b := range append(byType["aws_iam_policy_document"], byType["aws_iam_role_policy"]...) {
		for _, st := range statements(b.src) {
			if wild.MatchString(st.text) && !strings.Contains(st.text, "justification") && !strings.Contains(st.before, "justification") {
				t.Errorf("%s: %s has a \"*\" without a justification:\n%s", b.file, b.name, st.text)
			}
		}
	}
	// The OIDC trust pins the repository and main.
	var pinned bool
	for _, b := range byType["aws_iam_policy_document"] {
		if strings.Contains(string(b.src), "token.actions.githubusercontent.com:sub") && strings.Contains(string(b.src), `ref:refs/heads/main`) && strings.Contains(string(b.src), "repo:${var.repository}") {
			pinned = true
		}
	}
	if !pinned {
		t.Error("the GitHub OIDC trust does not pin the repository and refs/heads/main")
	}
	for _, b := range byType["aws_cloudwatch_log_group"] {
		if _, ok := b.body.Attributes["kms_key_id"]; !ok {
			t.Errorf("%s: log group %s is not KMS-encrypted", b.file, b.name)
		}
	}
	for _, b := range byType["aws_ssm_parameter"] {
		if b.kind != "resource" {
			continue
		}
		if v, ok := literal(b.body, "type"); !ok || v.AsString() != "SecureString" {
			t.Errorf("%s: parameter %s is not a SecureString", b.file, b.name)
		}
		if _, ok := b.body.Attributes["key_id"]; !ok {
			t.Errorf("%s: parameter %s has no CMK", b.file, b.name)
		}
	}
	var userRole bool
	for _, b := range byType["aws_iam_role"] {
		if strings.Contains(b.file, "user-role") {
			userRole = true
			if v, ok := literal(b.body, "max_session_duration"); !ok || !v.Equals(cty.NumberIntVal(3600)).True() {
				t.Errorf("%s: the user role's max session is not 3600 s", b.file)
			}
		}
	}
	if !userRole {
		t.Error("no user role")
	}
	if len(byType["aws_cloudtrail"]) == 0 {
		t.Error("no CloudTrail")
	}
	for _, b := range byType["aws_cloudtrail"] {
		for _, a := range []string{"enable_log_file_validation", "is_multi_region_trail"} {
			if v, ok := literal(b.body, a); !ok || v != cty.True {
				t.Errorf("%s: CloudTrail %s is not on", b.file, a)
			}
		}
		if _, ok := b.body.Attributes["kms_key_id"]; !ok {
			t.Errorf("%s: CloudTrail is not KMS-encrypted", b.file)
		}
	}
	for _, m := range []string{"identity", "storage", "user-role", "host", "dns", "static-site", "kms", "ssm", "logs", "ci-oidc", "guardrails"} {
		for _, f := range []string{"variables.tf", "outputs.tf", "versions.tf", "README.md"} {
			if _, err := os.Stat(filepath.Join("terraform/modules", m, f)); err != nil {
				t.Errorf("module %s lacks %s", m, f)
			}
		}
	}
}

type statement struct{ text, before string }

// statements splits a policy's source into its statement blocks (and the
// two lines before each, where a justification may stand).
func statements(src []byte) []statement {
	s := string(src)
	var out []statement
	for i := 0; ; {
		j := strings.Index(s[i:], "statement {")
		if j < 0 {
			// jsonencode'd policies: the whole block is the statement.
			if len(out) == 0 {
				out = append(out, statement{text: s})
			}
			return out
		}
		start := i + j
		depth, end := 0, start
		for k := start; k < len(s); k++ {
			if s[k] == '{' {
				depth++
			} else if s[k] == '}' {
				depth--
				if depth == 0 {
					end = k + 1
					break
				}
			}
		}
		before := s[max(0, start-300):start]
		out = append(out, statement{text: s[start:end], before: before})
		i = end
	}
}
