package deploy

import (
	"regexp"
	"strings"
	"testing"

	"github.com/quantapix/hqd/internal/auth"
)

// Sample values standing for what Terraform would fill in: an account, a
// region other than the provider's default, the prod env's names.
const (
	sAccount = "111122223333"
	sRegion  = "eu-west-1"
	sName    = "hqd"
	sBucket  = "hqd-uploads-example"
	sKey     = "arn:aws:kms:eu-west-1:111122223333:key/0b1c2d3e-4f50-4172-8394-a5b6c7d8e9f0"
	sSub     = "4f3c2b1a-5d6e-4f70-8a9b-0c1d2e3f4a5b"
	sOther   = "9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d7c6b"
)

func sampleData() map[string]any {
	return map[string]any{"data": map[string]any{
		"aws_region":          map[string]any{"this": map[string]any{"region": sRegion}},
		"aws_caller_identity": map[string]any{"this": map[string]any{"account_id": sAccount}},
		"aws_subnet":          map[string]any{"this": map[string]any{"availability_zone": sRegion + "a"}},
	}}
}

// TestPolicyUserSession: what a user's STS credentials may do is the
// intersection of the user role's policy (Terraform's user-role module),
// the session policy hqd passes to AssumeRole (auth.SessionPolicy) and the
// permission boundary (guardrails): each must allow, none may deny. The
// bucket is SSE-KMS, so S3 itself calls KMS with the user's rights: a GET
// needs kms:Decrypt and a PUT kms:GenerateDataKey, through S3 only.
func TestPolicyUserSession(t *testing.T) {
	bucketARN := "arn:aws:s3:::" + sBucket
	vars := map[string]any{"name": sName, "bucket_arn": bucketARN, "kms_key_arn": sKey, "host_role_arn": "arn:aws:iam::" + sAccount + ":role/hqd-host"}
	ur := loadModule(t, "modules/user-role")
	role := ur.policyDoc(t, ur.ctx(t, vars, sampleData()), "files")
	g := loadModule(t, "modules/guardrails")
	boundary := g.policyDoc(t, g.ctx(t, map[string]any{"name": sName, "kms_key_arn": sKey, "instance_id": "i-0123456789abcdef0"}, sampleData()), "boundary")
	session := parsePolicyJSON(t, auth.SessionPolicy(auth.Bucket{Name: sBucket, Region: sRegion, KMSKeyARN: sKey}, sSub))

	viaS3 := map[string]string{"kms:ViaService": "s3." + sRegion + ".amazonaws.com"}
	obj := func(key string) string { return bucketARN + "/" + key }
	own := "users/" + sSub + "/hq/"
	type c struct {
		r    request
		want bool
	}
	cases := []c{
		{request{Action: "s3:GetObject", Resource: obj(own + "notes/todo.md")}, true},
		{request{Action: "s3:PutObject", Resource: obj(own + "x")}, true},
		{request{Action: "s3:DeleteObject", Resource: obj(own + "x")}, true},
		{request{Action: "s3:ListBucket", Resource: bucketARN, Context: map[string]string{"s3:prefix": own}}, true},
		{request{Action: "s3:ListBucket", Resource: bucketARN, Context: map[string]string{"s3:prefix": own + "notes/"}}, true},
		{request{Action: "kms:Decrypt", Resource: sKey, Context: viaS3}, true},
		{request{Action: "kms:GenerateDataKey", Resource: sKey, Context: viaS3}, true},

		{request{Action: "s3:GetObject", Resource: obj("users/" + sOther + "/hq/x")}, false},
		{request{Action: "s3:PutObject", Resource: obj("users/" + sOther + "/hq/x")}, false},
		{request{Action: "s3:DeleteObject", Resource: obj("users/" + sOther + "/hq/x")}, false},
		{request{Action: "s3:GetObject", Resource: obj("users/" + sSub + "/other")}, false},
		{request{Action: "s3:GetObject", Resource: obj("top-level")}, false},
		{request{Action: "s3:ListBucket", Resource: bucketARN}, false},
		{request{Action: "s3:ListBucket", Resource: bucketARN, Context: map[string]string{"s3:prefix": ""}}, false},
		{request{Action: "s3:ListBucket", Resource: bucketARN, Context: map[string]string{"s3:prefix": "users/"}}, false},
		{request{Action: "s3:ListBucket", Resource: bucketARN, Context: map[string]string{"s3:prefix": "users/" + sOther + "/hq/"}}, false},
		{request{Action: "s3:GetObject", Resource: "arn:aws:s3:::another-bucket/" + own + "x"}, false},
		{request{Action: "s3:PutObject", Resource: "arn:aws:s3:::another-bucket/" + own + "x"}, false},
		{request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::another-bucket", Context: map[string]string{"s3:prefix": own}}, false},
		{request{Action: "s3:PutObjectAcl", Resource: obj(own + "x")}, false},
		{request{Action: "kms:Decrypt", Resource: sKey}, false},
		{request{Action: "kms:Decrypt", Resource: sKey, Context: map[string]string{"kms:ViaService": "ssm." + sRegion + ".amazonaws.com"}}, false},
		{request{Action: "kms:GenerateDataKey", Resource: sKey, Context: map[string]string{"kms:ViaService": "s3.us-east-1.amazonaws.com"}}, false},
		{request{Action: "kms:Decrypt", Resource: strings.Replace(sKey, "0b1c2d3e", "ffffffff", 1), Context: viaS3}, false},
		{request{Action: "kms:Encrypt", Resource: sKey, Context: viaS3}, false},
		{request{Action: "kms:CreateGrant", Resource: sKey, Context: viaS3}, false},
	}
	for _, tc := range cases {
		if got := allowed(t, tc.r, role, session, boundary); got != tc.want {
			t.Errorf("%s: allowed %v, want %v (role %v, session %v, boundary %v)", tc.r, got, tc.want,
				allowed(t, tc.r, role), allowed(t, tc.r, session), allowed(t, tc.r, boundary))
		}
	}

	// Without the key statement (a bucket hqd is told nothing about) the
	// same GET is denied: the failure issue 17 found.
	noKey := parsePolicyJSON(t, auth.SessionPolicy(auth.Bucket{Name: sBucket, Region: sRegion}, sSub))
	if allowed(t, request{Action: "kms:Decrypt", Resource: sKey, Context: viaS3}, role, noKey, boundary) {
		t.Error("kms:Decrypt allowed without the session policy's key statement: the evaluator is not intersecting")
	}

	// The values above are the ones the prod env wires together: the
	// session's key (HQD_KMS_KEY_ARN) is the role's key is the bucket's
	// key, the session's bucket (HQD_BUCKET) is the role's bucket, and the
	// session's region (HQD_AWS_REGION) is the provider's.
	prod := loadModule(t, "envs/prod")
	for _, w := range []struct{ module, attr, want string }{
		{"storage", "kms_key_arn", "module.kms.key_arn"},
		{"user_role", "kms_key_arn", "module.kms.key_arn"},
		{"user_role", "bucket_arn", "module.storage.bucket_arn"},
		{"host", "bucket_arn", "module.storage.bucket_arn"},
	} {
		if got := prod.attrText(prod.mustBlock(t, "module", w.module), w.attr); got != w.want {
			t.Errorf("envs/prod: module.%s.%s = %q, want %s", w.module, w.attr, got, w.want)
		}
	}
	settings := prod.attrText(prod.mustBlock(t, "module", "ssm"), "settings")
	for _, want := range []string{`HQD_KMS_KEY_ARN\s*=\s*module\.kms\.key_arn`, `HQD_BUCKET\s*=\s*module\.storage\.bucket\b`, `HQD_AWS_REGION\s*=\s*var\.region`, `HQD_STS_ROLE_ARN\s*=\s*module\.user_role\.role_arn`} {
		if !regexp.MustCompile(want).MatchString(settings) {
			t.Errorf("envs/prod: the ssm settings lack %s", want)
		}
	}
	if p := prod.attrText(prod.mustBlock(t, "provider", "aws"), "region"); p != "var.region" {
		t.Errorf("envs/prod: the provider's region is %q, not var.region (HQD_AWS_REGION)", p)
	}
}

// TestPolicyHost: the instance role (within the same boundary) reads its
// settings the way `hqd ssm-settings` asks for them, decrypts them, reads
// the release from its prefix only, writes its log group and publishes
// in the namespace the CloudWatch agent uses.
func TestPolicyHost(t *testing.T) {
	h := loadModule(t, "modules/host")
	releaseURI := "s3://hqd-releases-" + sAccount + "/hqd/hqd-release-v1.tar.gz"
	logGroup := "arn:aws:logs:" + sRegion + ":" + sAccount + ":log-group:/aws/hqd/hqd"
	ctx := h.ctx(t, map[string]any{
		"name": sName, "kms_key_arn": sKey, "bucket_arn": "arn:aws:s3:::" + sBucket, "log_group_arn": logGroup, "log_group_name": "/aws/hqd/hqd",
		"hqd_release_s3_uri": releaseURI, "hqd_release_sha256": strings.Repeat("0", 64), "vpc_id": "vpc-1", "subnet_id": "subnet-1",
	}, sampleData())
	daemon := h.policyDoc(t, ctx, "daemon")
	g := loadModule(t, "modules/guardrails")
	boundary := g.policyDoc(t, g.ctx(t, map[string]any{"name": sName, "kms_key_arn": sKey, "instance_id": "i-1"}, sampleData()), "boundary")
	param := "arn:aws:ssm:" + sRegion + ":" + sAccount + ":parameter/" + sName
	cases := []struct {
		r    request
		want bool
	}{
		{request{Action: "ssm:GetParametersByPath", Resource: param}, true},
		{request{Action: "ssm:GetParametersByPath", Resource: param + "/HQD_BUCKET"}, true},
		{request{Action: "ssm:GetParameter", Resource: param + "/HQD_BUCKET"}, true},
		{request{Action: "ssm:GetParametersByPath", Resource: param + "-other"}, false},
		{request{Action: "ssm:PutParameter", Resource: param + "/HQD_BUCKET"}, false},
		{request{Action: "kms:Decrypt", Resource: sKey}, true},
		{request{Action: "s3:GetObject", Resource: "arn:aws:s3:::hqd-releases-" + sAccount + "/hqd/hqd-release-v2.tar.gz"}, true},
		{request{Action: "s3:GetObject", Resource: "arn:aws:s3:::hqd-releases-" + sAccount + "/cdk-assets/x"}, false},
		{request{Action: "s3:PutObject", Resource: "arn:aws:s3:::hqd-releases-" + sAccount + "/hqd/x.tar.gz"}, false},
		{request{Action: "s3:GetObject", Resource: "arn:aws:s3:::" + sBucket + "/users/" + sSub + "/hq/x"}, true},
		{request{Action: "logs:PutLogEvents", Resource: logGroup + ":log-stream:i-0123"}, true},
		{request{Action: "logs:CreateLogStream", Resource: logGroup + ":log-stream:i-0123"}, true},
		{request{Action: "cloudwatch:PutMetricData", Resource: "*", Context: map[string]string{"cloudwatch:namespace": "hqd"}}, true},
		{request{Action: "cloudwatch:PutMetricData", Resource: "*", Context: map[string]string{"cloudwatch:namespace": "CWAgent"}}, false},
		{request{Action: "route53:ChangeResourceRecordSets", Resource: "arn:aws:route53:::hostedzone/Z1"}, false},
		{request{Action: "ec2:DescribeVolumes", Resource: "*"}, false},
	}
	for _, tc := range cases {
		if got := allowed(t, tc.r, daemon, boundary); got != tc.want {
			t.Errorf("%s: allowed %v, want %v (role %v, boundary %v)", tc.r, got, tc.want, allowed(t, tc.r, daemon), allowed(t, tc.r, boundary))
		}
	}
}

// TestPolicyBoundary: the boundary's denies (the seed's "Deny iam:* /
// r53:*" and "Deny ec2:*") hold whatever a role's policy grants.
func TestPolicyBoundary(t *testing.T) {
	g := loadModule(t, "modules/guardrails")
	boundary := g.policyDoc(t, g.ctx(t, map[string]any{"name": sName, "kms_key_arn": sKey, "instance_id": "i-1"}, sampleData()), "boundary")
	// Explicitly: a boundary's allow list is a ceiling that may grow; its
	// denies are the floor.
	for _, a := range []string{"route53:ChangeResourceRecordSets", "route53:CreateHostedZone", "route53:ListHostedZones", "route53:GetHostedZone", "route53:AssociateVPCWithHostedZone",
		"iam:CreateRole", "iam:PassRole", "ec2:TerminateInstances", "ec2:ModifyInstanceAttribute", "cloudtrail:StopLogging", "kms:ScheduleKeyDeletion", "organizations:LeaveOrganization"} {
		if !explicitlyDenied(t, request{Action: a, Resource: "*"}, boundary) {
			t.Errorf("the boundary does not deny %s", a)
		}
	}
}

// TestPolicyKeyAndTopic: the CMK's key policy lets each AWS service that
// uses the key do so with the request context that service documents, and
// the alerts topic lets Budgets and this account's alarms publish.
func TestPolicyKeyAndTopic(t *testing.T) {
	k := loadModule(t, "modules/kms")
	key := k.policyDoc(t, k.ctx(t, map[string]any{"name": sName}, sampleData()), "key")
	g := loadModule(t, "modules/guardrails")
	gctx := g.ctx(t, map[string]any{"name": sName, "kms_key_arn": sKey, "instance_id": "i-1"}, sampleData())
	trailName := g.evalAttr(t, gctx, g.mustBlock(t, "resource", "aws_cloudtrail", "this"), "name").AsString()
	topicName := g.evalAttr(t, gctx, g.mustBlock(t, "resource", "aws_sns_topic", "alerts"), "name").AsString()
	trail := "arn:aws:cloudtrail:" + sRegion + ":" + sAccount + ":trail/" + trailName
	topic := "arn:aws:sns:" + sRegion + ":" + sAccount + ":" + topicName
	svc := func(s string) [2]string { return [2]string{"Service", s} }
	logs := "logs." + sRegion + ".amazonaws.com"
	// Each request carries what its service documents sending, no more.
	logCtx := func(group string) map[string]string {
		return map[string]string{"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:" + sRegion + ":" + sAccount + ":log-group:" + group}
	}
	trailCtx := map[string]string{"aws:SourceArn": trail, "aws:SourceAccount": sAccount, "kms:EncryptionContext:aws:cloudtrail:arn": trail}
	snsCtx := func(topic string) map[string]string {
		return map[string]string{"kms:EncryptionContext:aws:sns:topicArn": topic, "kms:ViaService": "sns." + sRegion + ".amazonaws.com"}
	}
	cases := []struct {
		r    request
		want bool
	}{
		// CloudWatch Logs encrypts hqd's and the trail's log groups; it
		// sends the log group's ARN as encryption context.
		{request{Principal: svc(logs), Action: "kms:GenerateDataKey", Resource: "*", Context: logCtx("/aws/hqd/hqd")}, true},
		{request{Principal: svc(logs), Action: "kms:Decrypt", Resource: "*", Context: logCtx("/aws/hqd/cloudtrail")}, true},
		{request{Principal: svc(logs), Action: "kms:Encrypt", Resource: "*", Context: logCtx("/aws/hqd/hqd")}, true},
		{request{Principal: svc(logs), Action: "kms:DescribeKey", Resource: "*", Context: logCtx("/aws/hqd/hqd")}, true},
		{request{Principal: svc(logs), Action: "kms:GenerateDataKey", Resource: "*", Context: map[string]string{"aws:SourceAccount": sAccount}}, false},
		{request{Principal: svc(logs), Action: "kms:GenerateDataKey", Resource: "*", Context: map[string]string{"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:" + sRegion + ":444455556666:log-group:x"}}, false},
		{request{Principal: svc("logs.us-east-1.amazonaws.com"), Action: "kms:GenerateDataKey", Resource: "*", Context: logCtx("/aws/hqd/hqd")}, false},
		// CloudTrail encrypts its files for this trail.
		{request{Principal: svc("cloudtrail.amazonaws.com"), Action: "kms:GenerateDataKey", Resource: "*", Context: trailCtx}, true},
		{request{Principal: svc("cloudtrail.amazonaws.com"), Action: "kms:DescribeKey", Resource: "*", Context: map[string]string{"aws:SourceArn": trail}}, true},
		{request{Principal: svc("cloudtrail.amazonaws.com"), Action: "kms:GenerateDataKey", Resource: "*", Context: map[string]string{"aws:SourceArn": trail + "-other", "kms:EncryptionContext:aws:cloudtrail:arn": trail + "-other"}}, false},
		{request{Principal: svc("cloudtrail.amazonaws.com"), Action: "kms:Decrypt", Resource: "*", Context: trailCtx}, false},
		// Alarms and Budgets publish to the encrypted alerts topic.
		{request{Principal: svc("cloudwatch.amazonaws.com"), Action: "kms:GenerateDataKey", Resource: "*", Context: snsCtx(topic)}, true},
		{request{Principal: svc("cloudwatch.amazonaws.com"), Action: "kms:Decrypt", Resource: "*", Context: snsCtx(topic)}, true},
		{request{Principal: svc("budgets.amazonaws.com"), Action: "kms:GenerateDataKey", Resource: "*", Context: snsCtx(topic)}, true},
		{request{Principal: svc("budgets.amazonaws.com"), Action: "kms:Decrypt", Resource: "*", Context: snsCtx(topic)}, true},
		{request{Principal: svc("budgets.amazonaws.com"), Action: "kms:GenerateDataKey", Resource: "*", Context: snsCtx("arn:aws:sns:" + sRegion + ":444455556666:x")}, false},
		{request{Principal: svc("budgets.amazonaws.com"), Action: "kms:GenerateDataKey", Resource: "*"}, false},
		{request{Principal: svc("sqs.amazonaws.com"), Action: "kms:GenerateDataKey", Resource: "*", Context: snsCtx(topic)}, false},
		// The account administers the key (and its IAM policies grant the rest).
		{request{Principal: [2]string{"AWS", "arn:aws:iam::" + sAccount + ":root"}, Action: "kms:PutKeyPolicy", Resource: "*"}, true},
		{request{Principal: [2]string{"AWS", "arn:aws:iam::444455556666:root"}, Action: "kms:Decrypt", Resource: "*"}, false},
	}
	for _, tc := range cases {
		if got := allowed(t, tc.r, key); got != tc.want {
			t.Errorf("key policy: %s: allowed %v, want %v", tc.r, got, tc.want)
		}
	}

	// The topic's own policy: Budgets documents aws:SourceAccount and
	// aws:SourceArn (arn:aws:budgets::ACCOUNT:*) on its Publish.
	tp := g.mustBlock(t, "resource", "aws_sns_topic_policy", "alerts")
	if got := g.attrText(tp, "arn"); got != "aws_sns_topic.alerts.arn" {
		t.Errorf("the topic policy is on %s, not the alerts topic", got)
	}
	if got := g.attrText(tp, "policy"); got != "data.aws_iam_policy_document.alerts.json" {
		t.Errorf("the topic policy is %s", got)
	}
	tctx := g.ctx(t, map[string]any{"name": sName, "kms_key_arn": sKey, "instance_id": "i-1"},
		merge(sampleData(), map[string]any{"aws_sns_topic": map[string]any{"alerts": map[string]any{"arn": topic}}}))
	topicPolicy := g.policyDoc(t, tctx, "alerts")
	budget := "arn:aws:budgets::" + sAccount + ":budget/hqd-monthly"
	alarm := "arn:aws:cloudwatch:" + sRegion + ":" + sAccount + ":alarm:hqd-disk-root"
	for _, tc := range []struct {
		r    request
		want bool
	}{
		{request{Principal: svc("budgets.amazonaws.com"), Action: "SNS:Publish", Resource: topic, Context: map[string]string{"aws:SourceAccount": sAccount, "aws:SourceArn": budget}}, true},
		{request{Principal: svc("budgets.amazonaws.com"), Action: "sns:Publish", Resource: topic, Context: map[string]string{"aws:SourceAccount": "444455556666", "aws:SourceArn": "arn:aws:budgets::444455556666:budget/x"}}, false},
		{request{Principal: svc("cloudwatch.amazonaws.com"), Action: "SNS:Publish", Resource: topic, Context: map[string]string{"aws:SourceAccount": sAccount, "aws:SourceArn": alarm}}, true},
		{request{Principal: svc("cloudwatch.amazonaws.com"), Action: "SNS:Publish", Resource: topic, Context: map[string]string{"aws:SourceAccount": "444455556666", "aws:SourceArn": "arn:aws:cloudwatch:" + sRegion + ":444455556666:alarm:x"}}, false},
		{request{Principal: svc("events.amazonaws.com"), Action: "SNS:Publish", Resource: topic, Context: map[string]string{"aws:SourceAccount": sAccount}}, false},
		{request{Principal: [2]string{"AWS", "arn:aws:iam::" + sAccount + ":root"}, Action: "SNS:Subscribe", Resource: topic}, true},
		{request{Principal: [2]string{"AWS", "arn:aws:iam::444455556666:root"}, Action: "SNS:Publish", Resource: topic}, false},
	} {
		if got := allowed(t, tc.r, topicPolicy); got != tc.want {
			t.Errorf("topic policy: %s: allowed %v, want %v", tc.r, got, tc.want)
		}
	}
	// And the budget and every alarm publish to that topic.
	budgetSrc := g.text(g.mustBlock(t, "resource", "aws_budgets_budget", "monthly").Range())
	if !strings.Contains(budgetSrc, "subscriber_sns_topic_arns = [aws_sns_topic.alerts.arn]") {
		t.Error("the budget does not notify the alerts topic")
	}
	for _, b := range g.blocks {
		if b.Type == "resource" && b.Labels[0] == "aws_cloudwatch_metric_alarm" && g.attrText(b, "alarm_actions") != "[aws_sns_topic.alerts.arn]" {
			t.Errorf("alarm %s does not notify the alerts topic", b.Labels[1])
		}
	}
}

func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
