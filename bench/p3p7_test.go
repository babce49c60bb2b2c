package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/itest"
)

// p3 measures token verification cold and cached (budgets 60 µs, 2 µs).
func p3(t *testing.T) []figure {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	priv, _ := jwk.Import(key)
	_ = priv.Set(jwk.KeyIDKey, "k1")
	pub, _ := jwk.PublicKeyOf(priv)
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	jwks, _ := json.Marshal(set)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(jwks) }))
	defer srv.Close()
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuers: []auth.Issuer{{URL: "https://issuer.example/pool", JWKSURL: srv.URL}}, ClientIDs: []string{"c"}},
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		if ok, _ := v.Ready(ctx); ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	sign := func(i int) string {
		tok, _ := jwt.NewBuilder().Issuer("https://issuer.example/pool").Subject("user-1").Expiration(time.Now().Add(time.Hour)).
			IssuedAt(time.Now()).JwtID(fmt.Sprint(i)).Claim("token_use", "access").Claim("client_id", "c").Build()
		b, _ := jwt.Sign(tok, jwt.WithKey(jwa.RS256(), priv))
		return string(b)
	}
	n := 200
	if full() {
		n = 5000
	}
	toks := make([]string, n)
	for i := range toks {
		toks[i] = sign(i)
	}
	begin := time.Now()
	for _, tk := range toks {
		if _, err := v.Verify(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	cold := float64(time.Since(begin).Microseconds()) / float64(n)
	begin = time.Now()
	for range n * 20 {
		if _, err := v.Verify(ctx, toks[0]); err != nil {
			t.Fatal(err)
		}
	}
	cached := float64(time.Since(begin).Nanoseconds()) / float64(n*20) / 1000
	return []figure{
		{ID: "P3", Name: "token verification, cold", Budget: "≤ 60 µs", Value: cold, Unit: "µs", Met: cold <= 60},
		{ID: "P3", Name: "token verification, cached", Budget: "≤ 2 µs", Value: cached, Unit: "µs", Met: cached <= 2},
	}
}

// p7 measures a job's start-up overhead over a bare exec of the same
// stand-in (to its first line), and a cached 100-event replay to done.
func p7(t *testing.T, rounds int) []figure {
	bin := itest.Standin(t)
	project := itest.LakeProject(t, map[string]map[string]any{"Standin.Hello": {"action": "hello"}, "Standin.Hundred": {"action": "hundred"}})
	p := start(t, "HQD_LAKE_BIN="+bin, "HQD_VERIFIER_DIR="+project, "HQD_JOBS_MAX_PER_USER=1000")
	tok := signIn(t, p.url)
	firstEvent := func(body string, until string) time.Duration {
		begin := time.Now()
		events := submitJob(t, p.url, tok, body)
		resp := openEvents(t, events, tok)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), until) {
				return time.Since(begin)
			}
		}
		t.Fatalf("no %q in %s", until, events)
		return 0
	}
	bare := func() time.Duration {
		begin := time.Now()
		cmd := exec.Command(bin, "build", "Standin.Hello")
		cmd.Dir = project
		out, _ := cmd.StdoutPipe()
		_ = cmd.Start()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "hello") {
				break
			}
		}
		d := time.Since(begin)
		_ = cmd.Wait()
		return d
	}
	var jobs, bares []float64
	for i := range max(rounds*3, 3) {
		// A new source each time: a cache hit would start no process.
		jobs = append(jobs, float64(firstEvent(fmt.Sprintf(`{"source":"-- standin: hello\n-- %d %d\n"}`, i, time.Now().UnixNano()), "hello").Microseconds())/1000)
		bares = append(bares, float64(bare().Microseconds())/1000)
	}
	over := median(jobs) - median(bares)
	firstEvent(`{"target":"Standin.Hundred"}`, "event: done") // ran and cached
	var replays []float64
	for range max(rounds*3, 3) {
		replays = append(replays, float64(firstEvent(`{"target":"Standin.Hundred"}`, "event: done").Microseconds())/1000)
	}
	rep := median(replays)
	helper := "hqd-job-exec embedded"
	if _, err := os.Stat("../internal/lake/helper/hqd-job-exec"); err != nil {
		helper = "hqd itself as the helper (no make helper)"
	}
	return []figure{
		{ID: "P7", Name: "job start-up over a bare exec (to the first event)", Budget: "≤ 10 ms", Value: over, Unit: "ms", Met: over <= 10,
			Note: fmt.Sprintf("job %.1f ms, bare exec %.1f ms; %s", median(jobs), median(bares), helper)},
		{ID: "P7", Name: "cached replay of a 100-event job to done", Budget: "≤ 20 ms", Value: rep, Unit: "ms", Met: rep <= 20},
	}
}
