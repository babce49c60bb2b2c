package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/quantapix/hqd/internal/itest"
)

// TestCognitoMinIO runs hqd serve as production does, against real
// services: tokens from cognito-local, files in MinIO. Two users try every
// route and parameter against each other's files.
func TestCognitoMinIO(t *testing.T) {
	cog := itest.StartCognito(t)
	m := itest.StartMinIO(t)
	bucket := m.Bucket(t)
	h := startHQD(t, []string{
		"HQD_STORAGE=s3", "HQD_BUCKET=" + bucket, "HQD_S3_ENDPOINT=" + m.Endpoint, "HQD_S3_PATH_STYLE=true", "HQD_AWS_REGION=" + m.Region,
		"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"HQD_COGNITO_USER_POOL_ID=" + cog.PoolID, "HQD_COGNITO_CLIENT_IDS=" + cog.ClientID,
		"HQD_COGNITO_ENDPOINT=" + cog.Endpoint, "HQD_JWT_ISSUER=" + cog.Issuer,
		"HQD_ADDR=127.0.0.1:0", "HQD_METRICS_ADDR=127.0.0.1:0", "HQD_DATA_DIR=" + t.TempDir(),
	}, "serve")
	h.waitReady()

	alice := cog.SignUp(t, "alice@example.com", "Passw0rd!")
	bob := cog.SignUp(t, "bob@example.com", "Passw0rd!")

	t.Run("access and id tokens both work", func(t *testing.T) {
		for name, tok := range map[string]string{"access": alice.Access, "id": alice.ID} {
			a := do(t, "GET", h.URL+"/api/auth/credentials", tok, nil)
			var c map[string]string
			a.decode(t, &c)
			if a.status != 200 || c["userId"] != alice.Sub || c["prefix"] != "users/"+alice.Sub+"/hq/" || c["bucket"] != bucket || c["region"] != m.Region {
				t.Errorf("%s token: credentials = %d %s", name, a.status, a.body)
			}
		}
	})

	put := func(tok, path, content string, hdr ...string) call {
		return do(t, "PUT", h.URL+"/api/files/"+path+"?raw=1", tok, strings.NewReader(content), hdr...)
	}
	for i, p := range []string{"CLAUDE.md", "workers/registry.yaml", "a/1", "a/2", "a/3"} {
		if a := put(alice.Access, p, "alice "+p+strings.Repeat("!", i)); a.status != 200 {
			t.Fatalf("alice PUT %s = %d %s", p, a.status, a.body)
		}
	}
	aliceETag := do(t, "GET", h.URL+"/api/files/CLAUDE.md?raw=1", alice.Access, nil).header.Get("ETag")

	t.Run("bob cannot reach alice's files", func(t *testing.T) {
		for _, tc := range []struct{ method, path string }{
			{"GET", "/api/files/CLAUDE.md"},
			{"GET", "/api/files/CLAUDE.md?raw=1"},
			{"GET", "/api/files/..%2F" + alice.Sub + "%2Fhq%2FCLAUDE.md"},
			{"GET", "/api/files/%2E%2E/%2E%2E/" + alice.Sub + "/hq/CLAUDE.md"},
			{"GET", "/api/files/../../users/" + alice.Sub + "/hq/CLAUDE.md"},
			{"GET", "/api/files/users/" + alice.Sub + "/hq/CLAUDE.md"},
			{"GET", "/api/files?prefix=../" + alice.Sub + "/hq/"},
			{"GET", "/api/files?prefix=..%2F" + alice.Sub},
		} {
			a := do(t, tc.method, h.URL+tc.path, bob.Access, nil)
			if a.status == 200 && strings.Contains(string(a.body), "alice") {
				t.Errorf("%s %s gave bob alice's data: %s", tc.method, tc.path, a.body)
			}
			if a.status != 404 && a.status != 400 && !(a.status == 200 && !strings.Contains(string(a.body), "alice")) {
				t.Errorf("%s %s = %d %s", tc.method, tc.path, a.status, a.body)
			}
		}
		a := do(t, "GET", h.URL+"/api/files", bob.Access, nil)
		if a.status != 200 || strings.Contains(string(a.body), "CLAUDE") {
			t.Errorf("bob's listing = %d %s", a.status, a.body)
		}
		// A continuation token of alice's, and one forged to name her prefix.
		page := do(t, "GET", h.URL+"/api/files?prefix=a/&limit=1", alice.Access, nil)
		var l struct{ NextToken string }
		page.decode(t, &l)
		forged := base64.RawURLEncoding.EncodeToString([]byte(`{"u":"x","p":"a/","s":"users/` + alice.Sub + `/hq/a/1"}`))
		for _, tok := range []string{l.NextToken, forged} {
			a := do(t, "GET", h.URL+"/api/files?prefix=a/&limit=1&token="+tok, bob.Access, nil)
			if a.status != 400 || strings.Contains(string(a.body), "alice") {
				t.Errorf("bob with a foreign token = %d %s, want 400", a.status, a.body)
			}
		}
		// Overwrite and delete land in bob's own prefix, if anywhere.
		if a := put(bob.Access, "CLAUDE.md", "bob's"); a.status != 200 {
			t.Errorf("bob PUT his own CLAUDE.md = %d", a.status)
		}
		if a := put(bob.Access, "CLAUDE.md", "bob again", "If-Match", aliceETag); a.status != 412 {
			t.Errorf("bob PUT with alice's ETag = %d, want 412", a.status)
		}
		if a := do(t, "DELETE", h.URL+"/api/files/CLAUDE.md", bob.Access, nil); a.status != 204 {
			t.Errorf("bob DELETE = %d", a.status)
		}
		if a := do(t, "DELETE", h.URL+"/api/files/a/1", bob.Access, nil, "If-Match", aliceETag); a.status != 412 {
			t.Errorf("bob DELETE a/1 with alice's ETag = %d", a.status)
		}
		a = do(t, "GET", h.URL+"/api/files/CLAUDE.md?raw=1", alice.Access, nil)
		if a.status != 200 || string(a.body) != "alice CLAUDE.md" || a.header.Get("ETag") != aliceETag {
			t.Errorf("alice's CLAUDE.md after bob's attempts = %d %q", a.status, a.body)
		}
		// And in the bucket: bob's writes are under his prefix, nothing else moved.
		out, err := m.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out.Contents {
			k := aws.ToString(o.Key)
			if !strings.HasPrefix(k, "users/"+alice.Sub+"/hq/") && !strings.HasPrefix(k, "users/"+bob.Sub+"/hq/") {
				t.Errorf("key outside both prefixes: %s", k)
			}
		}
		if n := len(out.Contents); n != 5 {
			t.Errorf("bucket holds %d objects, want alice's 5", n)
		}
	})

	t.Run("tokens hqd must refuse", func(t *testing.T) {
		parts := strings.Split(alice.Access, ".")
		for name, tok := range map[string]string{
			"tampered":   parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+bob.Sub+`"}`)) + "." + parts[2],
			"no sig":     parts[0] + "." + parts[1] + ".",
			"refresh":    alice.Refresh,
			"not a JWT":  "abc",
			"other pool": otherPoolToken(t),
		} {
			if a := do(t, "GET", h.URL+"/api/files", tok, nil); a.status != 401 || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s token = %d %v", name, a.status, a.header)
			}
		}
	})

	t.Run("config names cognito-local", func(t *testing.T) {
		var cfg map[string]string
		do(t, "GET", h.URL+"/api/config", "", nil).decode(t, &cfg)
		if cfg["userPoolId"] != cog.PoolID || cfg["clientId"] != cog.ClientID || cfg["cognitoEndpoint"] != cog.Endpoint {
			t.Errorf("/api/config = %v", cfg)
		}
	})
}

// otherPoolToken is a valid token of another cognito-local pool.
func otherPoolToken(t *testing.T) string {
	other := itest.StartCognito(t)
	return other.SignUp(t, "eve@example.com", "Passw0rd!").Access
}
