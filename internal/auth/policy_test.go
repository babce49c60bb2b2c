package auth_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/quantapix/hqd/internal/auth"
)

func TestSessionPolicy(t *testing.T) {
	got := auth.SessionPolicy(auth.Bucket{Name: "hq-bucket", Region: "us-east-1"}, "3c6e2f1a-0b7d-4e8f-9a1b-2c3d4e5f6a7b")
	// Stable, byte for byte: the README documents this JSON.
	want := `{"Version":"2012-10-17","Statement":[` +
		`{"Sid":"OwnFiles","Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:DeleteObject"],"Resource":["arn:aws:s3:::hq-bucket/users/3c6e2f1a-0b7d-4e8f-9a1b-2c3d4e5f6a7b/hq/*"]},` +
		`{"Sid":"ListOwnPrefix","Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::hq-bucket"],"Condition":{"StringLike":{"s3:prefix":["users/3c6e2f1a-0b7d-4e8f-9a1b-2c3d4e5f6a7b/hq/*"]}}}]}`
	if got != want {
		t.Errorf("SessionPolicy =\n%s\nwant\n%s", got, want)
	}
	if !json.Valid([]byte(got)) || len(got) > 2048 {
		t.Errorf("policy is not valid JSON within STS's 2048 characters: %d", len(got))
	}
	// An SSE-KMS bucket: the key, only through S3 in the bucket's region.
	kms := auth.SessionPolicy(auth.Bucket{Name: "hq-bucket", Region: "eu-west-1", KMSKeyARN: "arn:aws:kms:eu-west-1:123456789012:key/abcd"}, "u-1")
	wantKMS := `{"Sid":"BucketKey","Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":["arn:aws:kms:eu-west-1:123456789012:key/abcd"],"Condition":{"StringEquals":{"kms:ViaService":["s3.eu-west-1.amazonaws.com"]}}}]}`
	if !strings.HasSuffix(kms, wantKMS) {
		t.Errorf("SessionPolicy with a key =\n%s\nwant it to end\n%s", kms, wantKMS)
	}
	// The longest names SPEC §4 and AWS allow still fit STS's limit.
	longKey := "arn:aws:kms:ap-southeast-2:123456789012:key/" + strings.Repeat("k", 36)
	if long := auth.SessionPolicy(auth.Bucket{Name: strings.Repeat("b", 63), Region: "ap-southeast-2", KMSKeyARN: longKey}, strings.Repeat("s", 128)); len(long) > 2048 {
		t.Errorf("policy for the longest names is %d characters", len(long))
	}
}

func TestRoleSessionName(t *testing.T) {
	for sub, want := range map[string]string{
		"3c6e2f1a-0b7d-4e8f-9a1b-2c3d4e5f6a7b": "hqd-3c6e2f1a-0b7d-4e8f-9a1b-2c3d4e5f6a7b",
		strings.Repeat("a", 128):               "hqd-" + strings.Repeat("a", 60),
	} {
		if got := auth.RoleSessionName(sub); got != want || len(got) > 64 {
			t.Errorf("RoleSessionName(%q) = %q, want %q", sub, got, want)
		}
	}
}
