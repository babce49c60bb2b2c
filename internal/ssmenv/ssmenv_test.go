package ssmenv_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/quantapix/hqd/internal/itest"
	"github.com/quantapix/hqd/internal/ssmenv"
)

func client(url string) *ssm.Client {
	return ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
}

func TestFetchAndRender(t *testing.T) {
	srv := itest.StandInSSM(t, map[string]string{
		"/hqd/HQD_BUCKET":          "hq-uploads",
		"/hqd/HQD_DOMAINS":         "api.example.com,api2.example.com",
		"/hqd/HQD_ODD":             `a "quoted" $HOME \ back` + "`tick`",
		"/hqd/nested/HQD_NOT_MINE": "x",
		"/other/HQD_X":             "y",
	})
	got, err := ssmenv.Fetch(context.Background(), client(srv.URL), "/hqd/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["HQD_BUCKET"] != "hq-uploads" || got["HQD_DOMAINS"] != "api.example.com,api2.example.com" {
		t.Fatalf("Fetch over three pages = %v", got)
	}
	file := string(ssmenv.Render(got, "/hqd/", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)))
	for _, want := range []string{
		"HQD_BUCKET=\"hq-uploads\"\n",
		"HQD_ODD=\"a \\\"quoted\\\" \\$HOME \\\\ back\\`tick\\`\"\n",
		"# Written by `hqd ssm-settings` from the SSM parameters under /hqd/ at 2026-12-01T00:00:00Z.\n",
	} {
		if !strings.Contains(file, want) {
			t.Errorf("the file lacks %q:\n%s", want, file)
		}
	}
	if strings.Index(file, "HQD_BUCKET") > strings.Index(file, "HQD_DOMAINS") {
		t.Errorf("settings are not sorted:\n%s", file)
	}
}

func TestFetchRefuses(t *testing.T) {
	for name, params := range map[string]map[string]string{
		"a name that is no variable": {"/hqd/HQD_OK": "1", "/hqd/hqd-lower": "x"},
		"a line break in a value":    {"/hqd/HQD_OK": "1", "/hqd/HQD_BAD": "a\nHQD_INJECTED=1"},
		"nothing under the path":     {"/elsewhere/HQD_OK": "1"},
	} {
		srv := itest.StandInSSM(t, params)
		if got, err := ssmenv.Fetch(context.Background(), client(srv.URL), "/hqd"); err == nil {
			t.Errorf("%s: Fetch = %v, want an error", name, got)
		}
	}
}

func TestWriteKeepsModeAndOwner(t *testing.T) {
	name := filepath.Join(t.TempDir(), "etc", "hqd.env")
	if err := ssmenv.Write(name, []byte("A=\"1\"\n")); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(name); st.Mode().Perm() != 0o640 {
		t.Errorf("a new file is %v, want 0640", st.Mode().Perm())
	}
	_ = os.Chmod(name, 0o600)
	if err := ssmenv.Write(name, []byte("A=\"2\"\n")); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(name); st.Mode().Perm() != 0o600 {
		t.Errorf("a rewritten file is %v, want its own 0600", st.Mode().Perm())
	}
	if b, _ := os.ReadFile(name); string(b) != "A=\"2\"\n" {
		t.Errorf("file = %q", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(name)); len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
}
