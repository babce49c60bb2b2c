package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, mode string, env map[string]string, args ...string) (*Config, string, error) {
	t.Helper()
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	var out, errw bytes.Buffer
	c, err := parseConfig(mode, args, func(k string) string { return env[k] }, environ, &out, &errw)
	return c, out.String() + errw.String(), err
}

func TestConfigRefusals(t *testing.T) {
	serveOK := map[string]string{"HQD_BUCKET": "hq-bucket", "HQD_COGNITO_USER_POOL_ID": "us-east-1_abc", "HQD_COGNITO_CLIENT_IDS": "client"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range serveOK {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string // a phrase of the error; "" means accepted
	}{
		{"complete", serveOK, nil, ""},
		{"no bucket", with("HQD_BUCKET", ""), nil, "HQD_BUCKET is required when HQD_STORAGE=s3"},
		{"short bucket", with("HQD_BUCKET", "ab"), nil, "HQD_BUCKET"},
		{"no client ids", with("HQD_COGNITO_CLIENT_IDS", ""), nil, "HQD_COGNITO_CLIENT_IDS is required"},
		{"no pool", with("HQD_COGNITO_USER_POOL_ID", ""), nil, "HQD_COGNITO_USER_POOL_ID"},
		{"bad storage", with("HQD_STORAGE", "ftp"), nil, `HQD_STORAGE: "ftp"`},
		{"bad size", with("HQD_MAX_UPLOAD", "5 gigs"), nil, "HQD_MAX_UPLOAD"},
		{"bad duration", with("HQD_SHUTDOWN_GRACE", "soon"), nil, "HQD_SHUTDOWN_GRACE"},
		{"bad bool", with("HQD_S3_PATH_STYLE", "yes"), nil, "HQD_S3_PATH_STYLE"},
		{"cert without key", with("HQD_TLS_CERT_FILE", "/x.pem"), nil, "HQD_TLS_CERT_FILE and HQD_TLS_KEY_FILE"},
		{"jwks count", with("HQD_JWT_ISSUER", "https://a,https://b", "HQD_JWKS_URL", "https://a/jwks"), nil, "HQD_JWKS_URL lists 1 URLs for 2 issuers"},
		{"metrics on the public listener", with("HQD_ADDR", ":8080", "HQD_METRICS_ADDR", ":8080"), nil, "HQD_METRICS_ADDR must differ"},
		{"acme", with("HQD_DOMAINS", "hq.example.com,verify.example.com", "HQD_HTTP_ADDR", ":80"), nil, ""},
		{"acme and static", with("HQD_DOMAINS", "hq.example.com", "HQD_TLS_CERT_FILE", "/c.pem", "HQD_TLS_KEY_FILE", "/k.pem"), nil, "alternatives"},
		{"redirect without TLS", with("HQD_HTTP_ADDR", ":80"), nil, "HQD_HTTP_ADDR redirects to HTTPS and needs TLS"},
		{"not a hostname", with("HQD_DOMAINS", "https://hq.example.com"), nil, `HQD_DOMAINS: "https://hq.example.com" is not a hostname`},
		{"plain-http CA", with("HQD_DOMAINS", "hq.example.com", "HQD_ACME_CA", "http://ca.example/dir"), nil, "HQD_ACME_CA"},
		{"dev flag in serve", with("HQD_DEV_ALLOW_REMOTE", "1"), nil, "hqd dev only"},
		{"job uids not a range", with("HQD_JOB_UIDS", "1000000000"), nil, "HQD_JOB_UIDS: \"1000000000\" is not a range"},
		{"job uids of real users", with("HQD_JOB_UIDS", "1000-70000"), nil, "starts below 65536"},
		{"job uids too few", with("HQD_JOB_UIDS", "1000000000-1000000003"), nil, "at least 16 uids"},
		{"job uids reversed", with("HQD_JOB_UIDS", "1000065535-1000000000"), nil, "is not a range"},
		{"flag with a bad value", serveOK, []string{"--max-upload=lots"}, "max-upload"},
		{"unknown flag", serveOK, []string{"--no-such-thing"}, "no-such-thing"},
		{"stray argument", serveOK, []string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parse(t, "serve", tc.env, tc.args...)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error = %v, want one naming %q", err, tc.want)
			}
		})
	}
	_, _, err := parse(t, "serve", nil)
	for _, name := range []string{"HQD_BUCKET", "HQD_COGNITO_CLIENT_IDS", "HQD_COGNITO_USER_POOL_ID"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("an empty configuration's error %v does not name %s", err, name)
		}
	}
}

func TestConfigSources(t *testing.T) {
	env := map[string]string{"HQD_BUCKET": "from-env", "HQD_COGNITO_USER_POOL_ID": "eu-west-1_pool", "HQD_COGNITO_CLIENT_IDS": "a, b", "HQD_AWS_REGION": "eu-west-1",
		"HQD_MAX_UPLOAD": "256MiB", "HQD_SHUTDOWN_GRACE": "2m", "HQD_TYPO_BUCKET": "x"}
	c, out, err := parse(t, "serve", env, "--bucket=from-flag")
	if err != nil {
		t.Fatal(err)
	}
	if c.Bucket != "from-flag" {
		t.Errorf("bucket = %q, flags must win over the environment", c.Bucket)
	}
	if c.MaxUpload != 256<<20 || c.ShutdownGrace != 2*time.Minute || len(c.ClientIDs) != 2 || c.ClientIDs[1] != "b" {
		t.Errorf("parsed %+v", c)
	}
	if want := []string{"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_pool", "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_pool"}; strings.Join(c.Issuers, " ") != strings.Join(want, " ") {
		t.Errorf("default issuers = %v, want both Cognito formats %v", c.Issuers, want)
	}
	if !strings.Contains(out, "HQD_TYPO_BUCKET") || strings.Count(out, "\n") != 1 {
		t.Errorf("unknown variable warning = %q, want one line naming HQD_TYPO_BUCKET", out)
	}
	for _, tc := range []struct {
		in   string
		want int64
	}{{"268435456", 268435456}, {"256MiB", 256 << 20}, {"1GiB", 1 << 30}, {"5GiB", 5 << 30}, {"10KiB", 10 << 10}} {
		if got, err := parseSize(tc.in); err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"", "1.5GiB", "-1", "1GB", "1 GiB", "99999999999TiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestConfigEmptyTurnsOff(t *testing.T) {
	c, _, err := parse(t, "dev", map[string]string{"HQD_METRICS_ADDR": ""})
	if err != nil || c.MetricsAddr != "" {
		t.Errorf("HQD_METRICS_ADDR= set but empty: %q %v, want the metrics listener off", c.MetricsAddr, err)
	}
	c, _, _ = parse(t, "dev", nil)
	if c.MetricsAddr != "127.0.0.1:9100" {
		t.Errorf("unset HQD_METRICS_ADDR = %q, want the default", c.MetricsAddr)
	}
}

func TestConfigHelp(t *testing.T) {
	_, out, err := parse(t, "serve", nil, "--help")
	if err != errHelp {
		t.Fatalf("--help: %v", err)
	}
	var c Config
	for _, s := range settings(&c, "serve") {
		if !strings.Contains(out, "--"+s.name+", "+s.env()+" (default ") {
			t.Errorf("--help does not list %s with its default", s.env())
		}
	}
	for _, name := range []string{"HQD_ADDR", "HQD_DATA_DIR", "HQD_METRICS_ADDR", "HQD_CORS_ORIGINS", "HQD_BUCKET", "HQD_S3_ENDPOINT", "HQD_STORAGE", "HQD_JWKS_URL", "HQD_SHUTDOWN_GRACE", "HQD_MAX_UPLOAD"} {
		if !strings.Contains(out, name) {
			t.Errorf("--help lacks %s", name)
		}
	}
}

func TestDevDefaults(t *testing.T) {
	c, _, err := parse(t, "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.Storage != "dir" || c.DataDir != ".hqd" || c.StorageDir != ".hqd/files" || !c.devIDP() {
		t.Errorf("dev defaults = %+v", c)
	}
	if _, _, err := parse(t, "dev", nil, "--addr=0.0.0.0:8080"); err == nil || !strings.Contains(err.Error(), "HQD_DEV_ALLOW_REMOTE") {
		t.Errorf("dev on a public address: %v, want a refusal naming HQD_DEV_ALLOW_REMOTE", err)
	}
	if _, _, err := parse(t, "dev", nil, "--addr=0.0.0.0:8080", "--dev-allow-remote=true"); err != nil {
		t.Errorf("dev told explicitly: %v", err)
	}
	c, _, _ = parse(t, "dev", map[string]string{"HQD_JWT_ISSUER": "http://127.0.0.1:9229/pool"})
	if c.devIDP() {
		t.Error("dev with an issuer of its own still runs the dev identity provider")
	}
}
