package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/quantapix/hqd/internal/itest"
)

// syncTool is one of P11's contestants: a command that copies a local
// folder to a bucket prefix on MinIO.
type syncTool struct {
	name string // as in HQD_BENCH_P11_TOOLS
	bin  string
	// setup readies round's run of dir: a fresh configuration and an
	// empty prefix. It answers the command line that syncs dir (the same
	// for the upload and the no-change re-sync), its environment, and the
	// bucket prefix the files land under.
	setup func(round int, dir string) (args, env []string, prefix string)
}

// p11 is issue 21's comparison: `hq sync --direct` against `mc mirror` and
// `rclone sync`, each uploading the same folder of small files (1–8 KiB,
// a few nested folders) to an empty prefix of one MinIO bucket, then
// syncing it again with nothing changed. Each round runs every tool once,
// in an order rotated each round, on a fresh copy of the folder, a fresh
// configuration and a fresh prefix.
//
// make test runs 50 files, one round, and hq only: mc and rclone are built
// for make bench alone (scripts/tools.sh mc|rclone, minutes each), while
// hq's part (hqd serve, cognito-local, STS, login, both syncs) is the code
// that could rot. HQD_BENCH_P11_TOOLS=mc,rclone picks other contestants
// (with HQD_BENCH_ONLY=P11: the peers alone, no hq needed) and
// HQD_BENCH_P11_FILES another folder size.
func p11(t *testing.T, rounds int) []figure {
	files, names := 50, []string{"hq"}
	if full() {
		files, names = 10000, []string{"hq", "mc", "rclone"}
	}
	if n, err := strconv.Atoi(os.Getenv("HQD_BENCH_P11_FILES")); err == nil && n > 0 {
		files = n
	}
	if v := os.Getenv("HQD_BENCH_P11_TOOLS"); v != "" {
		names = strings.Split(v, ",")
	}
	m := itest.StartMinIO(t)
	bucket := m.Bucket(t)
	st := startP11Stack(t, m, bucket)
	var tools []syncTool
	for _, name := range names {
		switch name {
		case "hq":
			tools = append(tools, hqTool(t, m, st))
		case "mc":
			tools = append(tools, mcTool(t, m, bucket, st))
		case "rclone":
			tools = append(tools, rcloneTool(t, m, bucket, st))
		default:
			t.Fatalf("HQD_BENCH_P11_TOOLS: unknown tool %q (hq, mc, rclone)", name)
		}
	}
	for _, tool := range tools { // the binaries in the page cache, as for a user's second run
		warm := exec.Command(tool.bin, "--version")
		warm.Env = toolEnv(t)
		_, _ = warm.CombinedOutput()
	}

	upload, again := map[string][]float64{}, map[string][]float64{}
	for round := range rounds {
		for i := range tools {
			tool := tools[(i+round)%len(tools)]
			dir := t.TempDir()
			tree := p11Tree(t, dir, files)
			args, env, prefix := tool.setup(round, dir)
			up := p11Run(t, tool, args, env)
			p11Check(t, m, bucket, prefix, tree, tool.name+" upload")
			no := p11Run(t, tool, args, env)
			p11Check(t, m, bucket, prefix, tree, tool.name+" no-change re-sync")
			t.Logf("P11 round %d, %s: upload %.2f s, no-change re-sync %.2f s", round+1, tool.name, up, no)
			upload[tool.name], again[tool.name] = append(upload[tool.name], up), append(again[tool.name], no)
			p11Clear(t, m, bucket, prefix) // each run starts on an equally full bucket
			_ = os.RemoveAll(dir)
		}
	}

	n := thousands(files)
	how := fmt.Sprintf("medians of %d rounds (tools in a rotated order), each run on a fresh copy of the folder, as a new user (an empty users/{sub}/hq/) with that user's STS credentials from hqd's refresh route (MinIO checks the session policy on every request, for every tool); parallelism 8 where a tool has a setting (hq --jobs 8 by default, rclone --transfers 8 --checkers 8), mc mirror sizes its own worker pool", rounds)
	var figs []figure
	peer, faster := 0.0, ""
	for _, name := range []string{"mc", "rclone"} {
		if up, ok := upload[name]; ok && (faster == "" || median(up) < peer) {
			peer, faster = median(up), name
		}
	}
	if up, ok := upload["hq"]; ok {
		hq := median(up)
		f := figure{ID: "P11", Name: fmt.Sprintf("initial upload of %s files of 1–8 KiB: hq sync --direct", n), Value: hq, Unit: "s", Note: how}
		if faster != "" {
			f.Name += " vs the faster of mc mirror and rclone sync"
			f.Budget, f.Ratio = "≥ 1.0×", peer/hq
			f.Met = f.Ratio >= 1.0
			f.Note = fmt.Sprintf("hq %.2f s, %s %.2f s (ratio: the faster peer's time over hq's); %s", hq, p11Label[faster], peer, how)
		} else {
			f.Met = true // no peer measured: a reference figure
		}
		no := median(again["hq"])
		figs = append(figs, f, figure{ID: "P11", Name: fmt.Sprintf("no-change re-sync of %s files: hq sync --direct", n), Budget: "≤ 1 s",
			Value: no, Unit: "s", Met: no <= 1, Note: "hq lists the prefix and compares both sides with its state in DIR/.hq/" + peersNoChange(again)})
	}
	peerNotes := map[string]string{
		"mc":     "mc mirror lists both sides and compares names and sizes",
		"rclone": "rclone sync compares sizes and modification times (the latter kept in object metadata: a HEAD per object)",
	}
	for _, name := range []string{"mc", "rclone"} {
		if _, ok := upload[name]; !ok {
			continue
		}
		label := p11Label[name]
		figs = append(figs,
			figure{ID: "P11", Name: fmt.Sprintf("initial upload of %s files of 1–8 KiB: %s", n, label), Value: median(upload[name]), Unit: "s", Met: true,
				Note: "a peer's figure, for comparison"},
			figure{ID: "P11", Name: fmt.Sprintf("no-change re-sync of %s files: %s", n, label), Value: median(again[name]), Unit: "s", Met: true,
				Note: peerNotes[name]})
	}
	return figs
}

// p11Label names each contestant's command in the figures.
var p11Label = map[string]string{"hq": "hq sync --direct", "mc": "mc mirror", "rclone": "rclone sync"}

// peersNoChange is the peers' no-change re-sync medians, for hq's note.
func peersNoChange(again map[string][]float64) string {
	var s []string
	for _, name := range []string{"mc", "rclone"} {
		if xs, ok := again[name]; ok {
			s = append(s, fmt.Sprintf("%s %.2f s", p11Label[name], median(xs)))
		}
	}
	if len(s) == 0 {
		return ""
	}
	return "; " + strings.Join(s, ", ")
}

// p11Stack is hqd serve on MinIO with cognito-local and MinIO's STS: each
// run's user signs up there, and every contestant uploads with that user's
// STS credentials from hqd's refresh route (scoped to users/{sub}/hq/), as
// a person using mc or rclone with their HQ credentials would. The
// session policy is MinIO's work on every request, so all tools pay it.
type p11Stack struct {
	cog *itest.Cognito
	url string
}

const p11Password = "Passw0rd!"

func startP11Stack(t *testing.T, m *itest.MinIO, bucket string) *p11Stack {
	cog := itest.StartCognito(t)
	p := startMode(t, "serve",
		"HQD_STORAGE=s3", "HQD_BUCKET="+bucket, "HQD_S3_ENDPOINT="+m.Endpoint, "HQD_S3_PATH_STYLE=true", "HQD_AWS_REGION="+m.Region,
		"AWS_ACCESS_KEY_ID="+m.AccessKey, "AWS_SECRET_ACCESS_KEY="+m.SecretKey,
		"HQD_COGNITO_USER_POOL_ID="+cog.PoolID, "HQD_COGNITO_CLIENT_IDS="+cog.ClientID,
		"HQD_COGNITO_ENDPOINT="+cog.Endpoint, "HQD_JWT_ISSUER="+cog.Issuer,
		"HQD_STS_ROLE_ARN=arn:aws:iam::000000000000:role/hqd-user", "HQD_STS_ENDPOINT="+m.Endpoint)
	return &p11Stack{cog: cog, url: p.url}
}

// user signs a new user up (an empty users/{sub}/hq/).
func (st *p11Stack) user(t *testing.T, round int) (email string, tok itest.Tokens) {
	email = fmt.Sprintf("p11-%d-%d@example.com", round, time.Now().UnixNano())
	tok = st.cog.SignUp(t, email, p11Password)
	secrets.Note(tok.Access, "access token")
	secrets.Note(tok.Refresh, "refresh token")
	return email, tok
}

// stsCredentials are a new user's credentials from hqd's refresh route.
type stsCredentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Sub                                        string
}

func (st *p11Stack) credentials(t *testing.T, round int) stsCredentials {
	_, tok := st.user(t, round)
	body := strings.NewReader(fmt.Sprintf(`{"refreshToken":%q}`, tok.Refresh))
	resp, err := http.Post(st.url+"/api/auth/refresh", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		Credentials *stsCredentials `json:"credentials"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != 200 || ans.Credentials == nil {
		t.Fatalf("refresh: %d %v", resp.StatusCode, err)
	}
	secrets.Note(ans.Credentials.SecretAccessKey, "STS secret key")
	secrets.Note(ans.Credentials.SessionToken, "STS session token")
	ans.Credentials.Sub = tok.Sub
	return *ans.Credentials
}

// hqTool is `hq sync --direct`, signed in with `hq login` into a fresh
// HQ_CONFIG_DIR (not timed); it gets its STS credentials itself.
func hqTool(t *testing.T, m *itest.MinIO, st *p11Stack) syncTool {
	bin := itest.BuildCmd(t, "hq") // as make build makes it
	return syncTool{name: "hq", bin: bin, setup: func(round int, dir string) ([]string, []string, string) {
		email, tok := st.user(t, round)
		env := toolEnv(t, "HQ_CONFIG_DIR="+t.TempDir())
		login := exec.Command(bin, "login", "--endpoint", st.url, "--email", email, "--password-stdin")
		login.Env, login.Stdin = env, strings.NewReader(p11Password+"\n")
		if out, err := login.CombinedOutput(); err != nil {
			t.Fatalf("hq login: %v\n%s", err, out)
		}
		return []string{"sync", "--direct", "--s3-endpoint", m.Endpoint, dir}, env, "users/" + tok.Sub + "/hq/"
	}}
}

// mcTool is `mc mirror` into the user's prefix, with the user's STS
// credentials in an alias given by the environment (MC_HOST_<alias>, with
// the session token) and its configuration in a fresh directory. mc mirror
// has no parallelism setting: it starts one worker per CPU and adds more
// while its throughput grows (up to 128).
func mcTool(t *testing.T, m *itest.MinIO, bucket string, st *p11Stack) syncTool {
	bin := itest.Tool(t, "mc")
	return syncTool{name: "mc", bin: bin, setup: func(round int, dir string) ([]string, []string, string) {
		c := st.credentials(t, round)
		prefix := "users/" + c.Sub + "/hq/"
		auth := url.PathEscape(c.AccessKeyID) + ":" + url.PathEscape(c.SecretAccessKey) + ":" + url.PathEscape(c.SessionToken)
		host := strings.Replace(m.Endpoint, "://", "://"+auth+"@", 1)
		env := toolEnv(t, "MC_HOST_p11="+host, "MC_CONFIG_DIR="+t.TempDir())
		return []string{"mirror", "--quiet", dir, "p11/" + bucket + "/" + strings.TrimSuffix(prefix, "/")}, env, prefix
	}}
}

// rcloneTool is `rclone sync` into the user's prefix, to a remote defined
// by the environment (RCLONE_CONFIG_P11_*: s3, provider Minio, the user's
// STS credentials; --s3-no-check-bucket, as the credentials may not create
// buckets), with 8 transfers (its default is 4; hq's --jobs default is 8)
// and its default 8 checkers, and otherwise its defaults.
func rcloneTool(t *testing.T, m *itest.MinIO, bucket string, st *p11Stack) syncTool {
	bin := itest.Tool(t, "rclone")
	return syncTool{name: "rclone", bin: bin, setup: func(round int, dir string) ([]string, []string, string) {
		c := st.credentials(t, round)
		prefix := "users/" + c.Sub + "/hq/"
		conf := filepath.Join(t.TempDir(), "rclone.conf")
		if err := os.WriteFile(conf, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		env := toolEnv(t, "RCLONE_CONFIG="+conf, "RCLONE_CONFIG_P11_TYPE=s3", "RCLONE_CONFIG_P11_PROVIDER=Minio",
			"RCLONE_CONFIG_P11_ACCESS_KEY_ID="+c.AccessKeyID, "RCLONE_CONFIG_P11_SECRET_ACCESS_KEY="+c.SecretAccessKey,
			"RCLONE_CONFIG_P11_SESSION_TOKEN="+c.SessionToken,
			"RCLONE_CONFIG_P11_ENDPOINT="+m.Endpoint, "RCLONE_CONFIG_P11_REGION="+m.Region)
		return []string{"sync", dir, "p11:" + bucket + "/" + prefix, "--transfers", "8", "--checkers", "8",
			"--s3-no-check-bucket"}, env, prefix
	}}
}

// toolEnv is this process's environment without anything that could
// configure a contestant behind the benchmark's back (credentials, hq's,
// hqd's, mc's and rclone's settings), with a fresh home, plus extra.
func toolEnv(t *testing.T, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HQ_") && !strings.HasPrefix(kv, "HQD_") &&
			!strings.HasPrefix(kv, "MC_") && !strings.HasPrefix(kv, "RCLONE_") && !strings.HasPrefix(kv, "HOME=") &&
			!strings.HasPrefix(kv, "XDG_") {
			env = append(env, kv)
		}
	}
	home := t.TempDir()
	env = append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	return append(env, extra...)
}

// p11Run runs one sync and answers its wall-clock time in seconds. A run
// must end in sync (exit 0) within 10 minutes.
func p11Run(t *testing.T, tool syncTool, args, env []string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool.bin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	begin := time.Now()
	err := cmd.Run()
	d := time.Since(begin)
	if err != nil {
		tail := out.String()
		if len(tail) > 4000 {
			tail = "…" + tail[len(tail)-4000:]
		}
		t.Fatalf("%s %s: %v\n%s", tool.name, strings.Join(args, " "), err, tail)
	}
	return d.Seconds()
}

// p11Tree writes the benchmark's folder under dir, the same every time
// (a fixed seed): files of 1–8 KiB of random bytes in 8 folders of 5
// subfolders each. It answers each file's slash-separated path and size.
func p11Tree(t *testing.T, dir string, files int) map[string]int64 {
	r := rand.New(rand.NewPCG(11, 21))
	tree := make(map[string]int64, files)
	made := map[string]bool{}
	buf := make([]byte, 8192)
	for i := range files {
		rel := fmt.Sprintf("notes-%d/week-%d/f%05d.md", i%8, (i/8)%5, i)
		size := 1024 + r.IntN(7*1024+1)
		for j := 0; j < size; j += 8 {
			v := r.Uint64()
			for k := range min(8, size-j) {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if d := filepath.Dir(path); !made[d] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			made[d] = true
		}
		if err := os.WriteFile(path, buf[:size], 0o644); err != nil {
			t.Fatal(err)
		}
		tree[rel] = int64(size)
	}
	return tree
}

// p11Objects lists the objects under prefix: key after the prefix → size.
func p11Objects(t *testing.T, m *itest.MinIO, bucket, prefix string) map[string]int64 {
	got := map[string]int64{}
	pages := s3.NewListObjectsV2Paginator(m.Client(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatalf("listing %s: %v", prefix, err)
		}
		for _, o := range page.Contents {
			got[strings.TrimPrefix(aws.ToString(o.Key), prefix)] = aws.ToInt64(o.Size)
		}
	}
	return got
}

// p11Check fails unless prefix holds exactly the folder's files.
func p11Check(t *testing.T, m *itest.MinIO, bucket, prefix string, want map[string]int64, what string) {
	got := p11Objects(t, m, bucket, prefix)
	var wrong []string
	for k, size := range want {
		if got[k] != size {
			wrong = append(wrong, fmt.Sprintf("%s: %d bytes, want %d", k, got[k], size))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			wrong = append(wrong, k+": not in the folder")
		}
	}
	if len(wrong) > 0 {
		slices.Sort(wrong)
		t.Fatalf("after %s, %s holds %d objects for %d files; %d differ, e.g. %s", what, prefix, len(got), len(want), len(wrong),
			strings.Join(wrong[:min(5, len(wrong))], "; "))
	}
}

// p11Clear deletes what a run wrote, 1,000 keys a request, 4 at a time.
func p11Clear(t *testing.T, m *itest.MinIO, bucket, prefix string) {
	var keys []string
	for k := range p11Objects(t, m, bucket, prefix) {
		keys = append(keys, prefix+k)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for batch := range slices.Chunk(keys, 1000) {
		ids := make([]s3types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			ids[i] = s3types.ObjectIdentifier{Key: aws.String(k)}
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out, err := m.Client().DeleteObjects(context.Background(), &s3.DeleteObjectsInput{Bucket: &bucket,
				Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
			if err != nil || len(out.Errors) > 0 {
				t.Errorf("clearing %s: %v %v", prefix, err, out)
			}
		}()
	}
	wg.Wait()
}

// thousands writes n with comma separators: 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
