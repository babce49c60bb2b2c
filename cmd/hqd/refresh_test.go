package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/quantapix/hqd/internal/itest"
)

type refreshAnswer struct {
	AccessToken  string `json:"accessToken"`
	IDToken      string `json:"idToken"`
	RefreshToken string `json:"refreshToken"`
	TokenType    string `json:"tokenType"`
	ExpiresIn    int    `json:"expiresIn"`
	UserID       string `json:"userId"`
	Bucket       string `json:"bucket"`
	Region       string `json:"region"`
	Prefix       string `json:"prefix"`
	Credentials  *struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
		SessionToken    string `json:"sessionToken"`
		Expiration      string `json:"expiration"`
	} `json:"credentials"`
}

func refresh(t testing.TB, h *hqd, refreshToken, bearer string) (call, refreshAnswer) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"refreshToken": refreshToken})
	a := do(t, "POST", h.URL+"/api/auth/refresh", bearer, bytes.NewReader(b), "Content-Type", "application/json")
	var ans refreshAnswer
	if a.status == 200 {
		a.decode(t, &ans)
	}
	return a, ans
}

func serveEnv(cog *itest.Cognito, m *itest.MinIO, bucket string, extra ...string) []string {
	return append([]string{
		"HQD_STORAGE=s3", "HQD_BUCKET=" + bucket, "HQD_S3_ENDPOINT=" + m.Endpoint, "HQD_S3_PATH_STYLE=true", "HQD_AWS_REGION=" + m.Region,
		"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"HQD_COGNITO_USER_POOL_ID=" + cog.PoolID, "HQD_COGNITO_CLIENT_IDS=" + cog.ClientID,
		"HQD_COGNITO_ENDPOINT=" + cog.Endpoint, "HQD_JWT_ISSUER=" + cog.Issuer,
		"HQD_ADDR=127.0.0.1:0", "HQD_METRICS_ADDR=127.0.0.1:0",
	}, extra...)
}

// TestRefreshWithSTS proves SPEC §5.2's promise against real parts:
// cognito-local issues the refresh token, MinIO is the STS and enforces
// the session policy on the credentials hqd hands out.
func TestRefreshWithSTS(t *testing.T) {
	cog := itest.StartCognito(t)
	m := itest.StartMinIO(t)
	bucket, otherBucket := m.Bucket(t), m.Bucket(t)
	h := startHQD(t, serveEnv(cog, m, bucket, "HQD_DATA_DIR="+t.TempDir(),
		"HQD_STS_ROLE_ARN=arn:aws:iam::000000000000:role/hqd-user", "HQD_STS_ENDPOINT="+m.Endpoint), "serve")
	h.waitReady()
	alice := cog.SignUp(t, "alice@example.com", "Passw0rd!")
	bob := cog.SignUp(t, "bob@example.com", "Passw0rd!")
	ctx := context.Background()
	root := m.Client()
	for _, k := range []string{"users/" + bob.Sub + "/hq/secret.md", "users/" + alice.Sub + "/hq/notes.md", "top-level.txt"} {
		if _, err := root.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := root.PutObject(ctx, &s3.PutObjectInput{Bucket: &otherBucket, Key: aws.String("users/" + alice.Sub + "/hq/x"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}

	a, ans := refresh(t, h, alice.Refresh, "")
	if a.status != 200 {
		t.Fatalf("refresh = %d %s\n%s", a.status, a.body, h.Stdout())
	}
	if ans.AccessToken == "" || ans.IDToken == "" || ans.TokenType != "Bearer" || ans.ExpiresIn <= 0 || ans.UserID != alice.Sub ||
		ans.Bucket != bucket || ans.Region != m.Region || ans.Prefix != "users/"+alice.Sub+"/hq/" || ans.Credentials == nil || ans.RefreshToken != "" {
		t.Fatalf("refresh answer = %s", a.body)
	}
	exp, err := time.Parse(time.RFC3339, ans.Credentials.Expiration)
	if d := time.Until(exp); err != nil || d < 55*time.Minute || d > 61*time.Minute {
		t.Errorf("credentials expire in %v (%v), want about one hour", d, err)
	}
	if a := do(t, "GET", h.URL+"/api/files/notes.md?raw=1", ans.AccessToken, nil); a.status != 200 {
		t.Errorf("the refreshed access token is refused: %d", a.status)
	}

	t.Run("credentials reach only the user's prefix", func(t *testing.T) {
		c := ans.Credentials
		cli := s3.New(s3.Options{Region: m.Region, BaseEndpoint: aws.String(m.Endpoint), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)})
		own := "users/" + alice.Sub + "/hq/"
		bobs := "users/" + bob.Sub + "/hq/"
		allowed := map[string]error{}
		_, allowed["put own"] = cli.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(own + "new.md"), Body: strings.NewReader("mine")})
		_, allowed["get own"] = cli.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(own + "notes.md")})
		_, allowed["list own"] = cli.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(own)})
		_, allowed["list own folder"] = cli.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(own + "sub/")})
		_, allowed["delete own"] = cli.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(own + "new.md")})
		for name, err := range allowed {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		denied := map[string]error{}
		_, denied["get bob's"] = cli.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(bobs + "secret.md")})
		_, denied["put bob's"] = cli.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(bobs + "planted.md"), Body: strings.NewReader("x")})
		_, denied["delete bob's"] = cli.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(bobs + "secret.md")})
		_, denied["list bob's"] = cli.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(bobs)})
		_, denied["list bucket root"] = cli.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
		_, denied["list users/"] = cli.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("users/")})
		_, denied["list users/ delimited"] = cli.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("users/"), Delimiter: aws.String("/")})
		_, denied["get top level"] = cli.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("top-level.txt")})
		_, denied["put top level"] = cli.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("planted.txt"), Body: strings.NewReader("x")})
		_, denied["get other bucket"] = cli.GetObject(ctx, &s3.GetObjectInput{Bucket: &otherBucket, Key: aws.String(own + "x")})
		_, denied["put other bucket"] = cli.PutObject(ctx, &s3.PutObjectInput{Bucket: &otherBucket, Key: aws.String(own + "y"), Body: strings.NewReader("x")})
		_, denied["list other bucket"] = cli.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &otherBucket, Prefix: aws.String(own)})
		_, denied["list buckets"] = cli.ListBuckets(ctx, &s3.ListBucketsInput{})
		_, denied["create bucket"] = cli.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alice-own-bucket")})
		for name, err := range denied {
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
				t.Errorf("%s: %v, want AccessDenied", name, err)
			}
		}
		if _, err := root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(bobs + "secret.md")}); err != nil {
			t.Errorf("bob's file after alice's attempts: %v", err)
		}
	})

	t.Run("bearer tokens", func(t *testing.T) {
		if a, _ := refresh(t, h, alice.Refresh, alice.Access); a.status != 200 {
			t.Errorf("refresh with the same user's bearer = %d %s", a.status, a.body)
		}
		if a, _ := refresh(t, h, alice.Refresh, bob.Access); a.status != 403 || a.code() != "forbidden" || strings.Contains(string(a.body), "accessToken") {
			t.Errorf("refresh with another user's bearer = %d %s, want 403", a.status, a.body)
		}
		// An expired or broken access token does not stop a refresh.
		if a, _ := refresh(t, h, alice.Refresh, "expired.or.broken"); a.status != 200 {
			t.Errorf("refresh with a broken bearer = %d %s", a.status, a.body)
		}
	})

	t.Run("bad refresh tokens", func(t *testing.T) {
		for name, body := range map[string]string{
			"missing":   `{}`,
			"empty":     `{"refreshToken":""}`,
			"malformed": `{"refreshToken":"not-a-token"}`,
			"id token":  `{"refreshToken":"` + alice.ID + `"}`,
		} {
			a := do(t, "POST", h.URL+"/api/auth/refresh", "", strings.NewReader(body))
			if a.status != 401 || a.code() != "invalid_refresh_token" {
				t.Errorf("%s = %d %s, want 401", name, a.status, a.body)
			}
		}
		for name, body := range map[string]string{"not JSON": `refreshToken=x`, "unknown field": `{"refreshToken":"x","sub":"y"}`, "wrong type": `{"refreshToken":5}`} {
			if a := do(t, "POST", h.URL+"/api/auth/refresh", "", strings.NewReader(body)); a.status != 400 {
				t.Errorf("%s = %d %s, want 400", name, a.status, a.body)
			}
		}
	})

	t.Run("logout", func(t *testing.T) {
		carol := cog.SignUp(t, "carol@example.com", "Passw0rd!")
		_, fresh := refresh(t, h, carol.Refresh, "")
		b, _ := json.Marshal(map[string]string{"refreshToken": carol.Refresh})
		if a := do(t, "POST", h.URL+"/api/auth/logout", carol.Access, bytes.NewReader(b)); a.status != 204 {
			t.Fatalf("logout = %d %s", a.status, a.body)
		}
		if a := do(t, "GET", h.URL+"/api/files", carol.Access, nil); a.status != 401 {
			t.Errorf("the access token after logout = %d, want 401", a.status)
		}
		if a, _ := refresh(t, h, carol.Refresh, ""); a.status != 401 {
			t.Errorf("refresh with the revoked token = %d %s, want 401", a.status, a.body)
		}
		// cognito-local's tokens carry no origin_jti, so only the presented
		// token is refused here; the dev provider's test covers siblings.
		if a := do(t, "GET", h.URL+"/api/files", fresh.AccessToken, nil); a.status != 200 {
			t.Logf("a sibling without origin_jti: %d", a.status)
		}
		if a := do(t, "POST", h.URL+"/api/auth/logout", "", nil); a.status != 401 {
			t.Errorf("logout without a token = %d", a.status)
		}
	})

	t.Run("metrics and logs", func(t *testing.T) {
		body := string(do(t, "GET", h.MetricsURL+"/metrics", "", nil).body)
		for _, want := range []string{`hqd_auth_refreshes_total{outcome="ok"}`, `hqd_auth_refreshes_total{outcome="invalid_refresh_token"}`, `hqd_auth_refreshes_total{outcome="forbidden"}`, `hqd_auth_logouts_total{outcome="ok"} 1`} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %s:\n%s", want, grep(body, "hqd_auth"))
			}
		}
		logs := h.Stdout() + h.Stderr()
		for name, secret := range map[string]string{"refresh token": alice.Refresh, "access token": alice.Access[30:90], "secret key": ans.Credentials.SecretAccessKey, "session token": ans.Credentials.SessionToken[:40]} {
			if strings.Contains(logs, secret) {
				t.Errorf("the logs contain a %s", name)
			}
		}
	})
}

// TestRefreshFailures: Cognito down, STS down, STS refusing.
func TestRefreshFailures(t *testing.T) {
	cog := itest.StartCognito(t)
	m := itest.StartMinIO(t)
	bucket := m.Bucket(t)
	user := cog.SignUp(t, "dan@example.com", "Passw0rd!")
	closed := fmt.Sprintf("http://127.0.0.1:%d", itest.FreePort(t))

	t.Run("cognito down", func(t *testing.T) {
		h := startHQD(t, serveEnv(cog, m, bucket, "HQD_DATA_DIR="+t.TempDir(), "HQD_COGNITO_ENDPOINT="+closed), "serve")
		a, _ := refresh(t, h, user.Refresh, "")
		if a.status != 503 || a.header.Get("Retry-After") == "" || a.code() != "identity_provider_unavailable" {
			t.Errorf("refresh with Cognito down = %d %v %s", a.status, a.header, a.body)
		}
	})
	t.Run("sts down", func(t *testing.T) {
		h := startHQD(t, serveEnv(cog, m, bucket, "HQD_DATA_DIR="+t.TempDir(), "HQD_STS_ROLE_ARN=arn:aws:iam::000000000000:role/x", "HQD_STS_ENDPOINT="+closed), "serve")
		h.waitReady()
		a, _ := refresh(t, h, user.Refresh, "")
		if a.status != 502 || a.code() != "sts_error" || a.header.Get("Retry-After") == "" || strings.Contains(string(a.body), "accessToken") {
			t.Errorf("refresh with STS down = %d %s, want 502 and no tokens", a.status, a.body)
		}
	})
	t.Run("sts refusing", func(t *testing.T) {
		env := serveEnv(cog, m, bucket, "HQD_DATA_DIR="+t.TempDir(), "HQD_STS_ROLE_ARN=arn:aws:iam::000000000000:role/x", "HQD_STS_ENDPOINT="+m.Endpoint,
			"AWS_ACCESS_KEY_ID=nobody", "AWS_SECRET_ACCESS_KEY=wrong-secret-key")
		h := startHQD(t, env, "serve")
		a, _ := refresh(t, h, user.Refresh, "")
		if a.status != 502 || a.code() != "sts_error" || strings.Contains(string(a.body), "accessToken") {
			t.Errorf("refresh with STS refusing = %d %s, want 502 and no tokens", a.status, a.body)
		}
	})
}
