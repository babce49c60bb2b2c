package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/quantapix/hqd/internal/itest"
)

// readEnv reads deploy/local/hqd.env (KEY=VALUE lines, # comments).
func readEnv(t *testing.T, name string) map[string]string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", name, line)
		}
		env[k] = v
	}
	return env
}

// TestLocalStack brings up the free local stack's parts without Docker —
// MinIO and cognito-local at the versions the compose file builds, hqd
// serve — from deploy/local's own files (hqd.env, the cognito seed), moved
// to free ports, and uses it as a person would: the pool and client exist
// from the start, the bucket too, a user signs up, stores a file, and gets
// STS credentials that reach it.
func TestLocalStack(t *testing.T) {
	env := readEnv(t, "local/hqd.env")
	compose, err := os.ReadFile("local/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	tools, _ := os.ReadFile("../scripts/tools.sh")
	// The compose file builds what the tests run, and gives both MinIO and
	// hqd this env file, whose two key pairs must agree.
	for _, pin := range []struct{ compose, tools string }{
		{`github.com/minio/minio@(\S+)`, `MINIO_VERSION=(\S+)`},
		{`cognito-local@(\S+)`, `COGNITO_LOCAL_VERSION=(\S+)`},
	} {
		c := regexp.MustCompile(pin.compose).FindSubmatch(compose)
		v := regexp.MustCompile(pin.tools).FindSubmatch(tools)
		if c == nil || v == nil || string(c[1]) != string(v[1]) {
			t.Errorf("the compose file pins %q, scripts/tools.sh %q", c, v)
		}
	}
	if n := strings.Count(string(compose), "env_file: [hqd.env]"); n != 2 {
		t.Errorf("hqd.env is given to %d services, want MinIO and hqd", n)
	}
	if strings.Contains(string(compose), "init.sh") || strings.Contains(string(compose), "depends_on: [localstack") {
		t.Error("the default stack still needs LocalStack or a first-run script")
	}
	if env["AWS_ACCESS_KEY_ID"] != env["MINIO_ROOT_USER"] || env["AWS_SECRET_ACCESS_KEY"] != env["MINIO_ROOT_PASSWORD"] {
		t.Error("hqd.env: hqd's AWS key pair is not MinIO's root user")
	}

	// The same addresses, on free ports.
	minioPort, cogPort, hqdPort := itest.FreePort(t), itest.FreePort(t), itest.FreePort(t)
	move := strings.NewReplacer("127.0.0.1:9000", fmt.Sprintf("127.0.0.1:%d", minioPort), "127.0.0.1:9229", fmt.Sprintf("127.0.0.1:%d", cogPort),
		"127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", hqdPort))
	for k, v := range env {
		env[k] = move.Replace(v)
	}
	env["HQD_METRICS_ADDR"] = ""

	// MinIO as the compose file runs it: the bucket a folder at first start.
	data := t.TempDir()
	if err := os.Mkdir(filepath.Join(data, env["HQD_BUCKET"]), 0o755); err != nil {
		t.Fatal(err)
	}
	minio := exec.Command(itest.Tool(t, "minio"), "server", data, "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", minioPort),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", itest.FreePort(t)))
	minio.Env = append(os.Environ(), "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_ROOT_USER="+env["MINIO_ROOT_USER"],
		"MINIO_ROOT_PASSWORD="+env["MINIO_ROOT_PASSWORD"], "MINIO_REGION="+env["MINIO_REGION"])
	itest.StartUntilReady(t, minio, fmt.Sprintf("http://127.0.0.1:%d/minio/health/ready", minioPort))

	// cognito-local with the seed copied into its .cognito, as the compose
	// file's command does.
	cogDir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "local/cognito", filepath.Join(cogDir, ".cognito")).CombinedOutput(); err != nil {
		t.Fatalf("copying the seed: %v %s", err, out)
	}
	cfgFile := filepath.Join(cogDir, ".cognito", "config.json")
	b, _ := os.ReadFile(cfgFile)
	_ = os.WriteFile(cfgFile, []byte(move.Replace(string(b))), 0o644)
	cog := exec.Command(itest.Tool(t, "cognito-local"))
	cog.Dir = cogDir
	cog.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", cogPort), "HOST=127.0.0.1")
	itest.StartUntilReady(t, cog, fmt.Sprintf("http://127.0.0.1:%d/health", cogPort))

	// hqd serve with exactly the env file's settings.
	hqd := exec.Command(hqdBinary(t), "serve")
	hqd.Env = []string{"PATH=" + os.Getenv("PATH"), "HQD_DATA_DIR=" + t.TempDir()}
	for k, v := range env {
		hqd.Env = append(hqd.Env, k+"="+v)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", hqdPort)
	itest.StartUntilReady(t, hqd, base+"/readyz")

	// A person: sign up (cognito-local sends no mail; the test confirms
	// as its log's code would), sign in, store a file, refresh for STS.
	cognito := func(action string, in any) map[string]any {
		t.Helper()
		status, out := itest.CognitoCall(t, env["HQD_COGNITO_ENDPOINT"]+"/", action, in)
		if status != 200 {
			t.Fatalf("%s = %d %v", action, status, out)
		}
		return out
	}
	var cfg map[string]string
	getJSON(t, base+"/api/config", &cfg)
	if cfg["userPoolId"] != env["HQD_COGNITO_USER_POOL_ID"] || cfg["clientId"] != env["HQD_COGNITO_CLIENT_IDS"] || cfg["cognitoEndpoint"] != env["HQD_COGNITO_ENDPOINT"] {
		t.Fatalf("/api/config = %v", cfg)
	}
	email, pass := "local@example.com", "Passw0rd!"
	cognito("SignUp", map[string]any{"ClientId": cfg["clientId"], "Username": email, "Password": pass,
		"UserAttributes": []map[string]string{{"Name": "email", "Value": email}}})
	cognito("AdminConfirmSignUp", map[string]any{"UserPoolId": cfg["userPoolId"], "Username": email})
	auth := cognito("InitiateAuth", map[string]any{"ClientId": cfg["clientId"], "AuthFlow": "USER_PASSWORD_AUTH",
		"AuthParameters": map[string]string{"USERNAME": email, "PASSWORD": pass}})["AuthenticationResult"].(map[string]any)
	token := auth["AccessToken"].(string)

	req, _ := http.NewRequest("PUT", base+"/api/files/notes/local.md?raw=1", strings.NewReader("# kept in MinIO"))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT through hqd = %v %v", resp, err)
	}
	resp.Body.Close()
	body, _ := json.Marshal(map[string]string{"refreshToken": auth["RefreshToken"].(string)})
	resp, err = http.Post(base+"/api/auth/refresh", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Bucket, Prefix string
		Credentials    *struct{ AccessKeyID, SecretAccessKey, SessionToken string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if resp.StatusCode != 200 || r.Credentials == nil || r.Bucket != env["HQD_BUCKET"] {
		t.Fatalf("refresh = %d %+v", resp.StatusCode, r)
	}
	direct := s3.New(s3.Options{Region: env["HQD_AWS_REGION"], BaseEndpoint: aws.String(env["HQD_S3_ENDPOINT"]), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(r.Credentials.AccessKeyID, r.Credentials.SecretAccessKey, r.Credentials.SessionToken)})
	obj, err := direct.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(r.Bucket), Key: aws.String(r.Prefix + "notes/local.md")})
	if err != nil {
		t.Fatalf("GET with the STS credentials: %v", err)
	}
	got, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if string(got) != "# kept in MinIO" {
		t.Errorf("the file through STS = %q", got)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}
