package auth

import (
	"encoding/json"
	"strings"
)

// Bucket names what a user's session reaches: the bucket, its region, and
// the KMS key it is encrypted with (SSE-KMS; "" when it is not).
type Bucket struct {
	Name, Region, KMSKeyARN string
}

// SessionPolicy is the inline policy of the STS session a user gets from a
// refresh (SPEC §5.2). It narrows the role's permissions to the user's own
// prefix: objects under users/{sub}/hq/ and listings of that prefix only;
// and, when the bucket is SSE-KMS, the two key actions S3 needs to read and
// write its objects, only through S3 in the bucket's region. (With S3
// Bucket Keys the encryption context is the bucket's ARN, not the
// object's, so the key statement does not name objects.) The effective
// rights are the role's ∩ this ∩ the boundary: without the key statement
// every GET and PUT on an SSE-KMS bucket is denied.
// Its JSON is stable (fields in this order, no spaces) and documented in
// the README next to the role policy it narrows.
func SessionPolicy(b Bucket, sub string) string {
	type condition struct {
		StringLike   map[string][]string `json:"StringLike,omitempty"`
		StringEquals map[string][]string `json:"StringEquals,omitempty"`
	}
	type statement struct {
		Sid       string     `json:"Sid"`
		Effect    string     `json:"Effect"`
		Action    []string   `json:"Action"`
		Resource  []string   `json:"Resource"`
		Condition *condition `json:"Condition,omitempty"`
	}
	type policy struct {
		Version   string      `json:"Version"`
		Statement []statement `json:"Statement"`
	}
	prefix := "users/" + sub + "/hq/"
	p := policy{Version: "2012-10-17", Statement: []statement{
		{Sid: "OwnFiles", Effect: "Allow", Action: []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
			Resource: []string{"arn:aws:s3:::" + b.Name + "/" + prefix + "*"}},
		{Sid: "ListOwnPrefix", Effect: "Allow", Action: []string{"s3:ListBucket"},
			Resource:  []string{"arn:aws:s3:::" + b.Name},
			Condition: &condition{StringLike: map[string][]string{"s3:prefix": {prefix + "*"}}}},
	}}
	if b.KMSKeyARN != "" {
		p.Statement = append(p.Statement, statement{Sid: "BucketKey", Effect: "Allow", Action: []string{"kms:Decrypt", "kms:GenerateDataKey"},
			Resource:  []string{b.KMSKeyARN},
			Condition: &condition{StringEquals: map[string][]string{"kms:ViaService": {"s3." + b.Region + ".amazonaws.com"}}}})
	}
	bs, _ := json.Marshal(p) // plain strings always marshal
	return string(bs)
}

// RoleSessionName is the STS session name of a user: "hqd-" and the sub,
// within STS's 64 characters. Cognito subs are UUIDs (36 characters); a
// longer sub is cut, the full one is in SourceIdentity (and CloudTrail).
func RoleSessionName(sub string) string {
	name := "hqd-" + sub
	if len(name) > 64 {
		name = name[:64]
	}
	return strings.TrimRight(name, "-")
}
