package itest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MinIO is a running MinIO server.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	proc      *process
	dir       string
	args      []string
	env       []string
	bin       string
}

// StartMinIO starts a MinIO server on a fresh data directory and stops it
// when the test ends.
func StartMinIO(tb testing.TB) *MinIO {
	tb.Helper()
	m := startMinIO(tb, tb.TempDir())
	tb.Cleanup(m.Stop)
	return m
}

// StartMinIOIn starts MinIO on dir; the caller stops it. For a server
// shared by a whole test package (started in TestMain's first test).
func startMinIO(tb testing.TB, dir string) *MinIO {
	bin := Tool(tb, "minio")
	port, console := FreePort(tb), FreePort(tb)
	m := &MinIO{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), AccessKey: "hqdtestroot", SecretKey: "hqdtestsecret-0123456789", Region: "us-east-1",
		dir: dir, bin: bin, args: []string{"server", dir, "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", port), "--console-address", fmt.Sprintf("127.0.0.1:%d", console)}}
	m.env = []string{"MINIO_ROOT_USER=" + m.AccessKey, "MINIO_ROOT_PASSWORD=" + m.SecretKey,
		"MINIO_REGION=" + m.Region, "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CALLHOME_ENABLE=off"}
	m.run(tb)
	return m
}

func (m *MinIO) run(tb testing.TB) {
	cmd := exec.Command(m.bin, m.args...)
	cmd.Env = append(cmd.Environ(), m.env...)
	m.proc = start(tb, cmd)
	if err := waitHTTP(m.Endpoint+"/minio/health/ready", 60*time.Second, m.proc.exited); err != nil {
		m.Stop()
		tb.Fatalf("MinIO did not start: %v\n%s", err, m.proc.log.String())
	}
}

// Restart starts a stopped server again on the same address and data.
func (m *MinIO) Restart(tb testing.TB) {
	tb.Helper()
	m.run(tb)
}

// Stop ends the server.
func (m *MinIO) Stop() { m.proc.Stop() }

// Credentials are the root credentials.
func (m *MinIO) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")
}

// Client is an S3 client of the root user.
func (m *MinIO) Client() *s3.Client {
	return s3.New(s3.Options{
		Region: m.Region, BaseEndpoint: aws.String(m.Endpoint), UsePathStyle: true, Credentials: m.Credentials(),
	})
}

// Bucket creates a bucket with a name unique to the test and returns it.
func (m *MinIO) Bucket(tb testing.TB) string {
	tb.Helper()
	name := "hqd-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(tb.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-") + fmt.Sprintf("-%d", time.Now().UnixNano()%1e9)
	// MinIO can answer ready and still refuse with "Server not initialized
	// yet" for a moment on a busy machine: wait that out (30 s at most).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, err := m.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name})
		if err == nil {
			return name
		}
		if !strings.Contains(err.Error(), "XMinioServerNotInitialized") || time.Now().After(deadline) {
			tb.Fatalf("creating bucket %s: %v", name, err)
		}
	}
}

// Pid is the MinIO server's process id (benchmarks read its CPU time).
func (m *MinIO) Pid() int { return m.proc.cmd.Process.Pid }
