package auth

import (
	"encoding/json"
	"strings"
)

// SessionPolicy is the inline policy of the STS session a user gets from a
// refresh (SPEC §5.2). It narrows the role's permissions to the user's own
// prefix: objects under users/{sub}/hq/ and listings of that prefix only.
// Its JSON is stable (fields in this order, no spaces) and documented in
// the README next to the role policy it narrows.
func SessionPolicy(bucket, sub string) string {
	type condition struct {
		StringLike map[string][]string `json:"StringLike"`
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
			Resource: []string{"arn:aws:s3:::" + bucket + "/" + prefix + "*"}},
		{Sid: "ListOwnPrefix", Effect: "Allow", Action: []string{"s3:ListBucket"},
			Resource:  []string{"arn:aws:s3:::" + bucket},
			Condition: &condition{StringLike: map[string][]string{"s3:prefix": {prefix + "*"}}}},
	}}
	b, _ := json.Marshal(p) // plain strings always marshal
	return string(b)
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
