package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// TestTerraformEstate asserts, offline, what issue 17 found only an apply
// (or a real account) would have shown: one subtest per defect, each
// reading the Terraform (and the host's rendered user-data) the way
// Terraform and the host would.
func TestTerraformEstate(t *testing.T) {
	t.Run("NoForEachOverSensitive", testNoSensitiveForEach)
	t.Run("AMIChangesIgnored", testAMIIgnored)
	t.Run("UserData", testUserData)
	t.Run("LakeVolumeByID", testLakeVolume)
	t.Run("DiskAlarmMatchesAgent", testDiskAlarm)
	t.Run("StaticSiteCSPAndCaching", testStaticSite)
	t.Run("TrailDataEvents", testTrailDataEvents)
	t.Run("CognitoSignIn", testCognito)
	t.Run("SettingsKnownToHqd", testSettingsKnown)
	t.Run("ReadmeVariables", testReadmeVariables)
}

// forEachProblems: Terraform refuses a sensitive value as for_each
// ("Sensitive values ... cannot be used as for_each arguments"); iterating
// over nonsensitive(keys(var.x)) is what it accepts.
func forEachProblems(m *tfModule) []string {
	sens := m.sensitiveVars()
	var out []string
	var walk func(b *hclsyntax.Block)
	walk = func(b *hclsyntax.Block) {
		if a, ok := b.Body.Attributes["for_each"]; ok {
			text := m.text(a.Expr.Range())
			for _, tr := range a.Expr.Variables() {
				if tr.RootName() != "var" || len(tr) < 2 {
					continue
				}
				name := tr[1].(hcl.TraverseAttr).Name
				ok := regexp.MustCompile(`nonsensitive\(\s*(toset\(\s*)?keys\(\s*var\.` + name + `\s*\)`).MatchString(text)
				if sens[name] && !ok {
					out = append(out, b.Type+" "+strings.Join(b.Labels, ".")+": for_each = "+text+" iterates over the sensitive var."+name)
				}
			}
		}
		for _, sub := range b.Body.Blocks {
			walk(sub)
		}
	}
	for _, b := range m.blocks {
		walk(b)
	}
	return out
}

func testNoSensitiveForEach(t *testing.T) {
	// The checker itself, on the expression issue 17 found and its fix.
	for src, want := range map[string]int{
		"variable \"s\" {\n  sensitive = true\n}\nresource \"x\" \"y\" {\n  for_each = var.s\n}\n":                            1,
		"variable \"s\" {\n  sensitive = true\n}\nresource \"x\" \"y\" {\n  for_each = nonsensitive(toset(keys(var.s)))\n}\n": 0,
		"variable \"s\" {\n  sensitive = true\n}\nresource \"x\" \"y\" {\n  dynamic \"z\" {\n    for_each = var.s\n  }\n}\n":  1,
		"variable \"s\" {\n  type = map(string)\n}\nresource \"x\" \"y\" {\n  for_each = var.s\n}\n":                          0,
	} {
		f, diags := hclparse.NewParser().ParseHCL([]byte(src), "t.tf")
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		m := &tfModule{dir: "t", src: map[string][]byte{"t.tf": []byte(src)}, blocks: f.Body.(*hclsyntax.Body).Blocks}
		if got := len(forEachProblems(m)); got != want {
			t.Errorf("forEachProblems(%q) found %d, want %d", src, got, want)
		}
	}
	for _, d := range dirs(t) {
		m := loadModule(t, strings.TrimPrefix(d, "terraform/"))
		for _, p := range forEachProblems(m) {
			t.Errorf("%s: %s", d, p)
		}
	}
	if len(loadModule(t, "modules/ssm").sensitiveVars()) == 0 {
		t.Error("modules/ssm: settings is no longer sensitive")
	}
}

// testAMIIgnored: the AMI comes from an SSM parameter that moves with each
// Amazon Linux release; a new AMI replaces the instance (the provider lifts
// termination protection to destroy it), so a plain apply would destroy the
// host every few weeks.
func testAMIIgnored(t *testing.T) {
	h := loadModule(t, "modules/host")
	inst := h.mustBlock(t, "resource", "aws_instance", "this")
	if !strings.Contains(h.attrText(inst, "ami"), "data.aws_ssm_parameter.") {
		t.Skip("the AMI is no longer a moving SSM parameter")
	}
	var ignored []string
	for _, b := range inst.Body.Blocks {
		if b.Type != "lifecycle" {
			continue
		}
		if a, ok := b.Body.Attributes["ignore_changes"]; ok {
			if tup, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok {
				for _, e := range tup.Exprs {
					ignored = append(ignored, h.text(e.Range()))
				}
			}
		}
	}
	if !slices.Contains(ignored, "ami") {
		t.Errorf("modules/host: aws_instance.this has no lifecycle { ignore_changes = [ami] } (it has %v)", ignored)
	}
	if !slices.Contains(ignored, "user_data") {
		t.Errorf("modules/host: aws_instance.this does not ignore user_data: a new release would stop and start the host and run nothing")
	}
}

// renderUserData renders the host's user-data as templatefile would, with
// the values the instance passes it.
func renderUserData(t *testing.T, name string) (string, map[string]cty.Value) {
	t.Helper()
	h := loadModule(t, "modules/host")
	ctx := h.ctx(t, map[string]any{
		"name": name, "kms_key_arn": sKey, "bucket_arn": "arn:aws:s3:::" + sBucket, "log_group_arn": "arn:aws:logs:" + sRegion + ":" + sAccount + ":log-group:/aws/" + name + "/hqd",
		"log_group_name": "/aws/" + name + "/hqd", "hqd_release_s3_uri": "s3://hqd-releases-" + sAccount + "/hqd/hqd-release-v1.tar.gz",
		"hqd_release_sha256": strings.Repeat("ab", 32), "vpc_id": "vpc-1", "subnet_id": "subnet-1",
	}, merge(sampleData(), map[string]any{"aws_ebs_volume": map[string]any{"lake": map[string]any{"id": "vol-0123456789abcdef0"}}}))
	inst := h.mustBlock(t, "resource", "aws_instance", "this")
	call, ok := inst.Body.Attributes["user_data"].Expr.(*hclsyntax.FunctionCallExpr)
	if !ok || call.Name != "templatefile" || len(call.Args) != 2 {
		t.Fatalf("modules/host: user_data is not templatefile(FILE, {…})")
	}
	file := strings.TrimPrefix(h.text(call.Args[0].Range()), `"${path.module}/`)
	file = strings.TrimSuffix(file, `"`)
	vars := h.eval(t, ctx, call.Args[1]).AsValueMap()
	src, err := os.ReadFile(filepath.Join("terraform/modules/host", file))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, diags := hclsyntax.ParseTemplate(src, file, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", file, diags.Error())
	}
	out, diags := tmpl.Value(&hcl.EvalContext{Variables: vars})
	if diags.HasErrors() {
		t.Fatalf("rendering %s: %s", file, diags.Error())
	}
	return out.AsString(), vars
}

// heredoc is the body of `cat > PATH <<'TAG'` … TAG in a script.
func heredoc(t *testing.T, script, path string) string {
	t.Helper()
	m := regexp.MustCompile(`cat > ` + regexp.QuoteMeta(path) + ` <<'(\w+)'\n`).FindStringSubmatchIndex(script)
	if m == nil {
		t.Fatalf("user-data writes no %s", path)
	}
	body := script[m[1]:]
	end := strings.Index(body, "\n"+script[m[2]:m[3]]+"\n")
	if end < 0 {
		t.Fatalf("user-data's here-document for %s does not end", path)
	}
	return body[:end]
}

func testUserData(t *testing.T) {
	script, vars := renderUserData(t, "hqd-stage")
	if len(script) > 16384 {
		t.Errorf("user-data is %d bytes; EC2 takes 16 KB", len(script))
	}
	if out, err := exec.Command("bash", "-n", "-c", script).CombinedOutput(); err != nil {
		t.Errorf("bash -n user-data: %v\n%s", err, out)
	}
	// Settings follow SSM: the release's drop-in, its path made the
	// host's, reloaded; no shell pipeline writes the settings file.
	for _, want := range []string{"/etc/systemd/system/hqd.service.d/ssm.conf", "systemctl daemon-reload", "/systemd/hqd-ssm.conf"} {
		if !strings.Contains(script, want) {
			t.Errorf("user-data lacks %q", want)
		}
	}
	for _, bad := range []string{"get-parameters-by-path", "while read", "> /etc/hqd/hqd.env", ">/etc/hqd/hqd.env"} {
		if strings.Contains(script, bad) {
			t.Errorf("user-data still has %q: hqd ssm-settings writes the settings file before every start", bad)
		}
	}
	sed := regexp.MustCompile(`sed 's#([^#]*)#([^#]*)#' "\$dir/x/systemd/hqd-ssm.conf" > /etc/systemd/system/hqd.service.d/ssm.conf`).FindStringSubmatch(script)
	dropIn, err := os.ReadFile("systemd/hqd-ssm.conf")
	if err != nil {
		t.Fatal(err)
	}
	if sed == nil {
		t.Fatal("user-data does not install hqd-ssm.conf through its sed")
	}
	installed := strings.ReplaceAll(string(dropIn), sed[1], sed[2])
	if !regexp.MustCompile(`(?m)^ExecStartPre=\+/usr/local/bin/hqd ssm-settings --path=/hqd-stage/ --out=/etc/hqd/hqd.env$`).MatchString(installed) {
		t.Errorf("the installed drop-in does not read /hqd-stage/:\n%s", installed)
	}
	if !strings.Contains(script, "hqd ssm-settings --path=/hqd-stage/ --out=/etc/hqd/hqd.env") {
		t.Error("user-data does not wait for the settings under /hqd-stage/ before hqd's first start")
	}
	// The release comes from the release bucket with the instance role,
	// and its sum is checked.
	for _, want := range []string{`aws s3 cp --region "eu-west-1" --only-show-errors "$uri"`, "sha256sum -c", `hqd-install-release "s3://hqd-releases-` + sAccount + `/hqd/hqd-release-v1.tar.gz" "` + strings.Repeat("ab", 32) + `"`} {
		if !strings.Contains(script, want) {
			t.Errorf("user-data lacks %q", want)
		}
	}
	if regexp.MustCompile(`curl [^\n]*-o `).MatchString(script) || strings.Count(script, "https://") != strings.Count(script, "https://$host/readyz") {
		t.Error("user-data downloads something over HTTP(S) instead of from the release bucket")
	}
	// The CloudWatch agent's configuration is valid JSON, and its log file
	// is the one the journal bridge writes.
	var agent struct {
		Logs struct {
			LogsCollected struct {
				Files struct {
					CollectList []struct {
						FilePath     string `json:"file_path"`
						LogGroupName string `json:"log_group_name"`
					} `json:"collect_list"`
				} `json:"files"`
			} `json:"logs_collected"`
		} `json:"logs"`
	}
	if err := json.Unmarshal([]byte(heredoc(t, script, "/opt/aws/amazon-cloudwatch-agent/etc/hqd.json")), &agent); err != nil {
		t.Fatalf("the CloudWatch agent's configuration: %v", err)
	}
	files := agent.Logs.LogsCollected.Files.CollectList
	bridge := heredoc(t, script, "/etc/systemd/system/hqd-journal.service")
	if len(files) != 1 || !strings.Contains(bridge, "StandardOutput=append:"+files[0].FilePath+"\n") || files[0].LogGroupName != "/aws/hqd-stage/hqd" {
		t.Errorf("the agent ships %+v; the bridge writes:\n%s", files, bridge)
	}
	for _, want := range []string{"--unit=hqd.service", "--unit=hqd-job@*.service", "--follow"} {
		if !strings.Contains(bridge, want) {
			t.Errorf("the journal bridge lacks %s", want)
		}
	}
	if !strings.Contains(script, "amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:/opt/aws/amazon-cloudwatch-agent/etc/hqd.json") {
		t.Error("user-data does not start the CloudWatch agent with its configuration")
	}
	if !strings.Contains(heredoc(t, script, "/etc/logrotate.d/hqd-journal"), files[0].FilePath) {
		t.Error("the bridge's file is not rotated")
	}
	// hqd-ready-metric reads HQD_DOMAINS as hqd ssm-settings writes it (quoted).
	ready := heredoc(t, script, "/usr/local/bin/hqd-ready-metric")
	sedLine := regexp.MustCompile(`host=\$\(sed -n '([^']*)' /etc/hqd/hqd.env\)`).FindStringSubmatch(ready)
	if sedLine == nil {
		t.Fatal("hqd-ready-metric does not read HQD_DOMAINS")
	}
	cmd := exec.Command("sed", "-n", sedLine[1])
	cmd.Stdin = strings.NewReader("HQD_BUCKET=\"b\"\nHQD_DOMAINS=\"api.hq.example.com,api2.hq.example.com\"\n")
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != "api.hq.example.com" {
		t.Errorf("hqd-ready-metric reads %q from the settings file (%v)", out, err)
	}
	_ = vars
}

func testLakeVolume(t *testing.T) {
	h := loadModule(t, "modules/host")
	vol := h.mustBlock(t, "resource", "aws_ebs_volume", "lake")
	if az := h.attrText(vol, "availability_zone"); strings.Contains(az, "aws_instance") {
		t.Errorf("the lake volume's zone is %s: user-data names the volume, so it cannot depend on the instance", az)
	}
	att := h.mustBlock(t, "resource", "aws_volume_attachment", "lake")
	if h.attrText(att, "volume_id") != "aws_ebs_volume.lake.id" || h.attrText(att, "instance_id") != "aws_instance.this.id" {
		t.Error("the lake volume is not attached to the instance")
	}
	script, vars := renderUserData(t, "hqd")
	if vars["lake_volume_id"].AsString() != "vol-0123456789abcdef0" {
		t.Errorf("user-data is given %v as the lake volume, not aws_ebs_volume.lake.id", vars["lake_volume_id"])
	}
	for _, bad := range []string{"nvme1n1", "/dev/sdf", "/dev/xvdf"} {
		if strings.Contains(script, bad) {
			t.Errorf("user-data names the lake by %s, which depends on the order devices appear", bad)
		}
	}
	setup := heredoc(t, script, "/usr/local/sbin/hqd-lake-setup")
	for _, want := range []string{"udevadm settle", "UUID=$uuid /srv/lake xfs defaults,nofail", "blkid \"$dev\" >/dev/null || mkfs.xfs"} {
		if !strings.Contains(setup, want) {
			t.Errorf("hqd-lake-setup lacks %q", want)
		}
	}
	if !strings.Contains(script, `/usr/local/sbin/hqd-lake-setup "vol-0123456789abcdef0"`) {
		t.Error("user-data does not run hqd-lake-setup on the lake volume's id")
	}
	// The device path it waits for is udev's name for an EBS volume:
	// nvme-Amazon_Elastic_Block_Store_ and the id without its dash.
	dev := regexp.MustCompile(`(?m)^dev=.*$`).FindString(setup)
	out, err := exec.Command("bash", "-c", "set -- vol-0123456789abcdef0; "+dev+"; echo \"$dev\"").Output()
	if err != nil || strings.TrimSpace(string(out)) != "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0" {
		t.Errorf("hqd-lake-setup waits for %q (%v)", out, err)
	}
}

// testDiskAlarm: the alarm watches the metric the agent publishes: same
// namespace, name and exactly the same dimensions, for each mount point.
func testDiskAlarm(t *testing.T) {
	script, _ := renderUserData(t, "hqd")
	var agent struct {
		Metrics struct {
			Namespace        string            `json:"namespace"`
			AppendDimensions map[string]string `json:"append_dimensions"`
			Aggregation      [][]string        `json:"aggregation_dimensions"`
			Collected        struct {
				Disk struct {
					Measurement []string `json:"measurement"`
					Resources   []string `json:"resources"`
				} `json:"disk"`
			} `json:"metrics_collected"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(heredoc(t, script, "/opt/aws/amazon-cloudwatch-agent/etc/hqd.json")), &agent); err != nil {
		t.Fatal(err)
	}
	g := loadModule(t, "modules/guardrails")
	ctx := g.ctx(t, map[string]any{"name": sName, "kms_key_arn": sKey, "instance_id": "i-0123456789abcdef0"}, sampleData())
	alarm := g.mustBlock(t, "resource", "aws_cloudwatch_metric_alarm", "disk")
	if ns := g.evalAttr(t, ctx, alarm, "namespace").AsString(); ns != agent.Metrics.Namespace {
		t.Errorf("the disk alarm watches namespace %q; the agent publishes in %q", ns, agent.Metrics.Namespace)
	}
	metric := g.evalAttr(t, ctx, alarm, "metric_name").AsString()
	if !slices.Contains(agent.Metrics.Collected.Disk.Measurement, strings.TrimPrefix(metric, "disk_")) || !strings.HasPrefix(metric, "disk_") {
		t.Errorf("the disk alarm watches %q; the agent publishes disk_%v", metric, agent.Metrics.Collected.Disk.Measurement)
	}
	if agent.Metrics.AppendDimensions["InstanceId"] != "${aws:InstanceId}" {
		t.Errorf("the agent does not add InstanceId: %v", agent.Metrics.AppendDimensions)
	}
	paths := strs(g.evalAttr(t, ctx, alarm, "for_each"))
	sort.Strings(paths)
	res := slices.Clone(agent.Metrics.Collected.Disk.Resources)
	sort.Strings(res)
	if !slices.Equal(paths, res) {
		t.Errorf("disk alarms for %v; the agent measures %v", paths, res)
	}
	for _, p := range paths {
		ctx.Variables["each"] = cty.ObjectVal(map[string]cty.Value{"value": cty.StringVal(p), "key": cty.StringVal(p)})
		dims := g.evalAttr(t, ctx, alarm, "dimensions").AsValueMap()
		var names []string
		for k := range dims {
			names = append(names, k)
		}
		sort.Strings(names)
		var rolled bool
		for _, a := range agent.Metrics.Aggregation {
			a = slices.Clone(a)
			sort.Strings(a)
			rolled = rolled || slices.Equal(a, names)
		}
		if !rolled || dims["path"].AsString() != p || dims["InstanceId"].AsString() != "i-0123456789abcdef0" {
			t.Errorf("the %s alarm's dimensions %v are not a set the agent publishes (%v)", p, dims, agent.Metrics.Aggregation)
		}
	}
	// And the instance role may publish there (TestPolicyHost: namespace hqd).
	if agent.Metrics.Namespace != "hqd" {
		t.Errorf("the agent publishes in %q; the instance role may publish in hqd only", agent.Metrics.Namespace)
	}
	prod := loadModule(t, "envs/prod")
	if got := prod.attrText(prod.mustBlock(t, "module", "host"), "log_group_name"); got != "module.logs.log_group_name" {
		t.Errorf("envs/prod: the host ships its journal to %q, not the logs module's group", got)
	}
}

// testStaticSite: the PWA on a stamp can call its API (connect-src wired
// from the env), and pages are cached five minutes however they are asked
// for: the Function's rewrite comes after the behaviour is chosen.
func testStaticSite(t *testing.T) {
	prod := loadModule(t, "envs/prod")
	pctx := prod.ctx(t, map[string]any{"api_hostnames": []string{"api.hq.example.com"}, "region": sRegion,
		"bucket": sBucket, "vpc_id": "v", "subnet_id": "s", "zone_id": "z", "acme_email": "a@example.com", "hqd_release_s3_uri": "s3://b/p/x.tar.gz",
		"hqd_release_sha256": "0", "release_bucket_arn": "arn:aws:s3:::b", "repository": "o/r", "log_bucket_domain_name": "l"}, nil)
	origins := strs(localVal(t, pctx, "envs/prod", "api_origins"))
	want := []string{"https://api.hq.example.com", "https://cognito-idp." + sRegion + ".amazonaws.com"}
	if !slices.Equal(origins, want) {
		t.Errorf("envs/prod: local.api_origins = %v, want %v", origins, want)
	}
	sites := prod.mustBlock(t, "module", "sites")
	if got := prod.attrText(sites, "connect_src"); !strings.Contains(got, "local.api_origins") || !strings.Contains(got, "each.value.calls_api") {
		t.Errorf("envs/prod: the sites' connect_src is %q, not the API origins for the PWA", got)
	}
	s := loadModule(t, "modules/static-site")
	sctx := s.ctx(t, map[string]any{"domain": "hq.example.com", "zone_id": "z", "log_bucket_domain_name": "l", "connect_src": origins}, nil)
	csp := localVal(t, sctx, "modules/static-site", "content_security_policy").AsString()
	if !strings.Contains(csp, "connect-src 'self' https://api.hq.example.com https://cognito-idp."+sRegion+".amazonaws.com;") {
		t.Errorf("the stamp's CSP has no connect-src for the API and Cognito: %s", csp)
	}
	for _, d := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("the stamp's CSP lost %s: %s", d, csp)
		}
	}
	hdr := s.mustBlock(t, "resource", "aws_cloudfront_response_headers_policy", "security")
	if !strings.Contains(s.text(hdr.Range()), "content_security_policy = local.content_security_policy") {
		t.Error("the headers policy does not send local.content_security_policy")
	}
	// Caching: the default behaviour (every page, and what the Function
	// rewrites to) gets the HTML policy; a year only for immutable_paths.
	dist := s.mustBlock(t, "resource", "aws_cloudfront_distribution", "site")
	html := s.mustBlock(t, "resource", "aws_cloudfront_cache_policy", "html")
	if v := s.evalAttr(t, sctx, html, "max_ttl"); !v.Equals(cty.NumberIntVal(300)).True() {
		t.Errorf("the HTML policy's max_ttl is %v", v.GoString())
	}
	var defaults, ordered int
	for _, b := range dist.Body.Blocks {
		switch {
		case b.Type == "default_cache_behavior":
			defaults++
			if s.attrText(b, "cache_policy_id") != "aws_cloudfront_cache_policy.html.id" {
				t.Errorf("the default behaviour's cache policy is %s, not the HTML one", s.attrText(b, "cache_policy_id"))
			}
			if !strings.Contains(s.text(b.Range()), "aws_cloudfront_function.rewrite.arn") {
				t.Error("the rewrite Function is not on the default behaviour")
			}
		case b.Type == "ordered_cache_behavior":
			t.Errorf("an ordered behaviour outside immutable_paths: %s", s.attrText(b, "path_pattern"))
		case b.Type == "dynamic" && b.Labels[0] == "ordered_cache_behavior":
			ordered++
			if got := s.attrText(b, "for_each"); got != "var.immutable_paths" {
				t.Errorf("ordered behaviours for %s", got)
			}
			if strings.Contains(s.text(b.Range()), "function_association") {
				t.Error("the rewrite Function runs on hashed assets")
			}
		}
	}
	if defaults != 1 || ordered != 1 {
		t.Errorf("%d default and %d ordered behaviours", defaults, ordered)
	}
	if d := strs(s.defaults()["immutable_paths"]); !slices.Equal(d, []string{"/assets/*"}) {
		t.Errorf("immutable_paths defaults to %v, not Vite's /assets/*", d)
	}
}

func testTrailDataEvents(t *testing.T) {
	g := loadModule(t, "modules/guardrails")
	trail := g.text(g.mustBlock(t, "resource", "aws_cloudtrail", "this").Range())
	for _, want := range []string{"event_selector {", "include_management_events = true", `type   = "AWS::S3::Object"`, "var.data_event_bucket_arns"} {
		if !strings.Contains(trail, want) {
			t.Errorf("the trail lacks %q", want)
		}
	}
	prod := loadModule(t, "envs/prod")
	if got := prod.attrText(prod.mustBlock(t, "module", "guardrails"), "data_event_bucket_arns"); got != "[module.storage.bucket_arn]" {
		t.Errorf("envs/prod: the trail's data events cover %q, not the uploads bucket (the storage module's tfsec note relies on them)", got)
	}
}

// testCognito: the seed's pool is CDK's signInAliases { email: true },
// which CDK makes UsernameAttributes [email] (alias attributes only with
// username: true). The PWA and CLI sign up with the e-mail as username,
// which a pool with an e-mail alias refuses.
func testCognito(t *testing.T) {
	id := loadModule(t, "modules/identity")
	pool := id.mustBlock(t, "resource", "aws_cognito_user_pool", "this")
	if v, ok := literal(pool.Body, "username_attributes"); !ok || !v.Equals(cty.TupleVal([]cty.Value{cty.StringVal("email")})).True() {
		t.Errorf("the pool's username_attributes is not [\"email\"]")
	}
	if _, ok := pool.Body.Attributes["alias_attributes"]; ok {
		t.Error("the pool has alias_attributes: its users could not sign up with their e-mail as username")
	}
}

// testSettingsKnown: every setting the env puts in SSM is one hqd reads (an
// unknown HQD_* variable is only warned about).
func testSettingsKnown(t *testing.T) {
	src, err := os.ReadFile("../cmd/hqd/config.go")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*\{"([a-z0-9-]+)", `).FindAllStringSubmatch(string(src), -1) {
		known["HQD_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
	}
	if !known["HQD_KMS_KEY_ARN"] || !known["HQD_BUCKET"] {
		t.Fatalf("cannot read hqd's settings from cmd/hqd/config.go (found %d)", len(known))
	}
	prod := loadModule(t, "envs/prod")
	obj, ok := prod.mustBlock(t, "module", "ssm").Body.Attributes["settings"].Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatal("envs/prod: module.ssm.settings is not an object")
	}
	var names []string
	for _, it := range obj.Items {
		k, diags := it.KeyExpr.Value(nil)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		names = append(names, k.AsString())
		if !known[k.AsString()] {
			t.Errorf("envs/prod sets %s, which hqd does not read", k.AsString())
		}
	}
	if !slices.Contains(names, "HQD_KMS_KEY_ARN") {
		t.Error("envs/prod does not set HQD_KMS_KEY_ARN: users' credentials could not use the bucket's key")
	}
}

// testReadmeVariables: deploy/README.md names every variable the prod env
// needs a value for (and none it no longer has).
func testReadmeVariables(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	prod := loadModule(t, "envs/prod")
	for _, b := range prod.blocks {
		if b.Type == "variable" {
			if _, ok := b.Body.Attributes["default"]; !ok && !strings.Contains(string(readme), "`"+b.Labels[0]+"`") {
				t.Errorf("deploy/README.md does not name the required variable %s", b.Labels[0])
			}
		}
	}
	if strings.Contains(string(readme), "hqd_release_url") {
		t.Error("deploy/README.md still names hqd_release_url")
	}
}
