package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/itest"
)

// tlsEnv is hqd serve on the dir store with a JWKS that loads (empty), so
// that readiness depends on the certificates alone.
func tlsEnv(t *testing.T, addr string, extra ...string) []string {
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{"keys":[]}`) }))
	t.Cleanup(jwks.Close)
	return append([]string{
		"HQD_STORAGE=dir", "HQD_JWT_ISSUER=https://issuer.hqd.test/pool", "HQD_JWKS_URL=" + jwks.URL, "HQD_COGNITO_CLIENT_IDS=c",
		"HQD_ADDR=" + addr, "HQD_METRICS_ADDR=127.0.0.1:0",
	}, extra...)
}

// httpsClient trusts only roots and reaches every name at 127.0.0.1:port.
func httpsClient(roots *x509.CertPool, port int) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots}, DialContext: dial, ForceAttemptHTTP2: true,
	}}
}

// waitCert polls name over HTTPS until it is served with a trusted certificate.
func waitCert(t *testing.T, c *http.Client, url string, timeout time.Duration) *http.Response {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s never served a trusted certificate: %v", url, lastErr)
	return nil
}

func TestACMETLSALPN(t *testing.T) {
	port := itest.FreePort(t)
	p := itest.StartPebble(t, itest.PebbleOptions{TLSPort: port, HTTPPort: itest.FreePort(t)})
	names := []string{"api.hqd.test", "verify.hqd.test"}
	for _, n := range names {
		p.AddHost(t, n, "127.0.0.1")
	}
	data := t.TempDir()
	env := tlsEnv(t, fmt.Sprintf("127.0.0.1:%d", port), "HQD_DATA_DIR="+data, "HQD_DOMAINS="+strings.Join(names, ","),
		"HQD_ACME_CA="+p.Directory, "HQD_ACME_CA_ROOTS="+p.CARoots, "HQD_ACME_EMAIL=ops@hqd.test")
	h := startHQD(t, env, "serve")
	if h.URL != fmt.Sprintf("https://api.hqd.test:%d", port) {
		t.Errorf("public URL = %s", h.URL)
	}
	c := httpsClient(p.IssuerRoots(t), port)
	for _, n := range names {
		resp := waitCert(t, c, fmt.Sprintf("https://%s:%d/healthz", n, port), 60*time.Second)
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Errorf("%s: %d over HTTP/%d, want 200 over HTTP/2", n, resp.StatusCode, resp.ProtoMajor)
		}
		if !strings.Contains(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
			t.Errorf("%s: no HSTS", n)
		}
		if resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("%s: TLS version %x", n, resp.TLS.Version)
		}
	}
	ready := waitReadyTLS(t, c, fmt.Sprintf("https://api.hqd.test:%d/readyz", port))
	if !strings.Contains(ready, `"api.hqd.test":{"ok":true`) {
		t.Errorf("/readyz = %s", ready)
	}
	metrics := string(do(t, "GET", h.MetricsURL+"/metrics", "", nil).body)
	if !strings.Contains(metrics, `hqd_certificate_expiry_timestamp_seconds{domain="verify.hqd.test"}`) {
		t.Errorf("no expiry metric:\n%s", grep(metrics, "certificate"))
	}
	if !strings.Contains(p.Log(), "authz") || strings.Contains(p.Log(), "Skipping real validation") {
		t.Errorf("Pebble did not validate a challenge:\n%s", p.Log())
	}
	// TLS 1.1 and plain HTTP are refused on the HTTPS port.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.IssuerRoots(t), MaxVersion: tls.VersionTLS11, ServerName: "api.hqd.test"}}}
	if _, err := old.Get(fmt.Sprintf("https://127.0.0.1:%d/healthz", port)); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); err == nil {
		if resp.StatusCode == 200 {
			t.Error("plain HTTP was served on the HTTPS port")
		}
		resp.Body.Close()
	}

	// A restart reuses the stored certificates: Pebble sees no new order.
	orders := p.Orders()
	if orders < len(names) {
		t.Errorf("Pebble saw %d orders for %d names", orders, len(names))
	}
	if _, err := h.stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	startHQD(t, env, "serve")
	resp := waitCert(t, c, fmt.Sprintf("https://verify.hqd.test:%d/healthz", port), 10*time.Second)
	if resp.StatusCode != 200 {
		t.Errorf("after restart: %d", resp.StatusCode)
	}
	// Ready means every name has its certificate (SPEC §3): had the restart
	// not found them stored, the orders would come before this.
	waitReadyTLS(t, c, fmt.Sprintf("https://api.hqd.test:%d/readyz", port))
	if got := p.Orders(); got != orders {
		t.Errorf("a restart with stored certificates made %d new orders", got-orders)
	}
	if _, err := os.Stat(filepath.Join(data, "certmagic")); err != nil {
		t.Errorf("certificates are not under HQD_DATA_DIR: %v", err)
	}
}

func waitReadyTLS(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	var body string
	for range 100 {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if resp.StatusCode == 200 {
				return body
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never ready: %s", url, body)
	return ""
}

func TestACMEHTTP01(t *testing.T) {
	httpsPort, httpPort := itest.FreePort(t), itest.FreePort(t)
	// Pebble checks TLS-ALPN-01 on a port where nothing listens, so only
	// HTTP-01 on hqd's plain-HTTP listener can succeed.
	p := itest.StartPebble(t, itest.PebbleOptions{TLSPort: itest.FreePort(t), HTTPPort: httpPort})
	p.AddHost(t, "files.hqd.test", "127.0.0.1")
	env := tlsEnv(t, fmt.Sprintf("127.0.0.1:%d", httpsPort), "HQD_DATA_DIR="+t.TempDir(), "HQD_DOMAINS=files.hqd.test",
		"HQD_ACME_CA="+p.Directory, "HQD_ACME_CA_ROOTS="+p.CARoots, fmt.Sprintf("HQD_HTTP_ADDR=127.0.0.1:%d", httpPort))
	startHQD(t, env, "serve")
	c := httpsClient(p.IssuerRoots(t), httpsPort)
	if resp := waitCert(t, c, fmt.Sprintf("https://files.hqd.test:%d/healthz", httpsPort), 90*time.Second); resp.StatusCode != 200 {
		t.Errorf("HTTPS after HTTP-01 = %d", resp.StatusCode)
	}
	if !strings.Contains(p.Log(), "Attempting to validate w/ HTTP") {
		t.Errorf("Pebble never validated over HTTP:\n%s", p.Log())
	}
	// The HTTP port redirects everything else to HTTPS.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/api/files?prefix=a", httpPort), nil)
	req.Host = "files.hqd.test"
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := fmt.Sprintf("https://files.hqd.test:%d/api/files?prefix=a", httpsPort); resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Errorf("HTTP = %d %s, want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

func TestACMERenewal(t *testing.T) {
	port := itest.FreePort(t)
	// 60 s certificates: always inside their renewal window (and "expiring
	// within 7 days" for /readyz).
	p := itest.StartPebble(t, itest.PebbleOptions{TLSPort: port, HTTPPort: itest.FreePort(t), Validity: 60})
	p.AddHost(t, "short.hqd.test", "127.0.0.1")
	env := tlsEnv(t, fmt.Sprintf("127.0.0.1:%d", port), "HQD_DATA_DIR="+t.TempDir(), "HQD_DOMAINS=short.hqd.test",
		"HQD_ACME_CA="+p.Directory, "HQD_ACME_CA_ROOTS="+p.CARoots)
	h := startHQD(t, env, "serve")
	c := httpsClient(p.IssuerRoots(t), port)
	first := waitCert(t, c, fmt.Sprintf("https://short.hqd.test:%d/healthz", port), 60*time.Second).TLS.PeerCertificates[0]
	resp, err := c.Get(fmt.Sprintf("https://short.hqd.test:%d/readyz", port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), "expires within 7 days") {
		t.Errorf("/readyz with a certificate about to expire = %d %s", resp.StatusCode, b)
	}
	if _, err := h.stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	orders := p.Orders()
	startHQD(t, env, "serve")
	deadline := time.Now().Add(60 * time.Second)
	for {
		c.CloseIdleConnections()
		resp := waitCert(t, c, fmt.Sprintf("https://short.hqd.test:%d/healthz", port), 10*time.Second)
		if cert := resp.TLS.PeerCertificates[0]; cert.SerialNumber.Cmp(first.SerialNumber) != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the certificate close to expiry was not renewed (orders %d → %d)\n%s", orders, p.Orders(), p.Log())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if p.Orders() <= orders {
		t.Errorf("renewed without a new order?")
	}
	// The renewal followed ARI: the new order names the one it replaces.
	if !strings.Contains(p.Log(), "is a replacement of") {
		t.Errorf("the renewal order is not an ARI replacement:\n%s", grep(p.Log(), "order"))
	}
}

func TestACMEFailures(t *testing.T) {
	port := itest.FreePort(t)
	p := itest.StartPebble(t, itest.PebbleOptions{TLSPort: port, HTTPPort: itest.FreePort(t), Blocked: []string{"refused.hqd.test"}})
	p.AddHost(t, "good.hqd.test", "127.0.0.1")
	p.AddHost(t, "refused.hqd.test", "127.0.0.1")
	p.AddHost(t, "foreign.hqd.test", "127.0.0.2") // someone else's address
	// unresolvable.hqd.test is in no DNS record.
	domains := "good.hqd.test,refused.hqd.test,foreign.hqd.test,unresolvable.hqd.test"
	env := tlsEnv(t, fmt.Sprintf("127.0.0.1:%d", port), "HQD_DATA_DIR="+t.TempDir(), "HQD_DOMAINS="+domains,
		"HQD_ACME_CA="+p.Directory, "HQD_ACME_CA_ROOTS="+p.CARoots)
	h := startHQD(t, env, "serve")
	c := httpsClient(p.IssuerRoots(t), port)
	// The names that can be served are served.
	if resp := waitCert(t, c, fmt.Sprintf("https://good.hqd.test:%d/healthz", port), 60*time.Second); resp.StatusCode != 200 {
		t.Errorf("good name = %d", resp.StatusCode)
	}
	url := fmt.Sprintf("https://good.hqd.test:%d/readyz", port)
	var body string
	for range 150 {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if resp.StatusCode == 503 && strings.Count(body, `"no certificate"`) == 3 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The public answer says which names lack one; the metrics listener's
	// says why (the CA's error is the operator's).
	detailed := string(do(t, "GET", h.MetricsURL+"/readyz", "", nil).body)
	for _, name := range []string{"refused", "foreign", "unresolvable"} {
		if !strings.Contains(body, `"`+name+`.hqd.test":{"ok":false,"detail":"no certificate"}`) {
			t.Errorf("/readyz does not say %s has no certificate: %s", name, body)
		}
		if !strings.Contains(detailed, `"`+name+`.hqd.test":{"ok":false,"detail":"no certificate: `) {
			t.Errorf("the metrics listener's /readyz does not say why %s has no certificate: %s", name, detailed)
		}
		if !strings.Contains(h.Stdout(), `"msg":"certificate not obtained","pkg":"certs","domain":"`+name+`.hqd.test"`) {
			t.Errorf("no log line names %s", name)
		}
	}
	if !strings.Contains(body, "rejectedIdentifier") && !strings.Contains(body, "refused") {
		t.Errorf("the CA's refusal is not named: %s", body)
	}
	// A name without a certificate gets no answer, never plain HTTP.
	bad := httpsClient(p.IssuerRoots(t), port)
	if _, err := bad.Get(fmt.Sprintf("https://refused.hqd.test:%d/healthz", port)); err == nil {
		t.Error("a name without a certificate was served")
	}
}

func TestACMEUnreachableCA(t *testing.T) {
	port := itest.FreePort(t)
	closed := fmt.Sprintf("https://127.0.0.1:%d/dir", itest.FreePort(t))
	env := tlsEnv(t, fmt.Sprintf("127.0.0.1:%d", port), "HQD_DATA_DIR="+t.TempDir(), "HQD_DOMAINS=nowhere.hqd.test", "HQD_ACME_CA="+closed)
	h := startHQD(t, env, "serve")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(h.Stdout(), `"msg":"certificate not obtained"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line about the unreachable CA:\n%s", h.Stdout())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(h.Stdout(), "connection refused") {
		t.Errorf("the log line does not say the CA is unreachable")
	}
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); err == nil {
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the HTTPS port")
		}
		resp.Body.Close()
	}
}

func TestStaticCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, rootFile := itest.TLSFiles(t, dir, "static.hqd.test")
	port := itest.FreePort(t)
	env := tlsEnv(t, fmt.Sprintf("127.0.0.1:%d", port), "HQD_DATA_DIR="+t.TempDir(), "HQD_TLS_CERT_FILE="+certFile, "HQD_TLS_KEY_FILE="+keyFile)
	h := startHQD(t, env, "serve")
	pool := func(file string) *x509.CertPool {
		b, _ := os.ReadFile(file)
		p := x509.NewCertPool()
		p.AppendCertsFromPEM(b)
		return p
	}
	oldRoots := pool(rootFile)
	c := httpsClient(oldRoots, port)
	url := fmt.Sprintf("https://static.hqd.test:%d/healthz", port)
	resp := waitCert(t, c, url, 5*time.Second)
	if resp.ProtoMajor != 2 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("static TLS: HTTP/%d, HSTS %q", resp.ProtoMajor, resp.Header.Get("Strict-Transport-Security"))
	}
	// A bad key on SIGHUP: the old certificate stays, and hqd says so.
	otherDir := t.TempDir()
	_, otherKey, _ := itest.TLSFiles(t, otherDir, "static.hqd.test")
	otherKeyPEM, _ := os.ReadFile(otherKey)
	_ = os.WriteFile(keyFile, otherKeyPEM, 0o600)
	_ = h.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, h, "certificate not reloaded")
	if !strings.Contains(h.Stdout(), "does not match") {
		t.Errorf("the reload failure does not say the key does not match")
	}
	c.CloseIdleConnections()
	if resp := waitCert(t, c, url, 5*time.Second); resp.StatusCode != 200 {
		t.Errorf("after a failed reload = %d", resp.StatusCode)
	}
	a := waitReadyTLS(t, c, fmt.Sprintf("https://static.hqd.test:%d/readyz", port))
	if !strings.Contains(a, "the last reload failed") {
		t.Errorf("/readyz does not report the failed reload: %s", a)
	}
	// A good new pair on SIGHUP replaces it; an open connection survives.
	newCert, newKey, newRoot := itest.TLSFiles(t, t.TempDir(), "static.hqd.test")
	b1, _ := os.ReadFile(newCert)
	b2, _ := os.ReadFile(newKey)
	_ = os.WriteFile(certFile, b1, 0o600)
	_ = os.WriteFile(keyFile, b2, 0o600)
	_ = h.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, h, "certificate reloaded")
	if resp, err := c.Get(url); err != nil || resp.StatusCode != 200 {
		t.Errorf("a connection open before the reload: %v", err)
	} else {
		resp.Body.Close()
	}
	fresh := httpsClient(pool(newRoot), port)
	if resp := waitCert(t, fresh, url, 5*time.Second); resp.StatusCode != 200 {
		t.Errorf("new connections after reload = %d", resp.StatusCode)
	}
	old := httpsClient(oldRoots, port)
	if _, err := old.Get(url); err == nil {
		t.Error("new connections still get the old certificate")
	}
}

func waitLog(t *testing.T, h *hqd, msg string) {
	t.Helper()
	for range 100 {
		if strings.Contains(h.Stdout(), msg) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no log line %q:\n%s", msg, h.Stdout())
}

func TestStaticCertificateRefusals(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := itest.TLSFiles(t, dir, "static.hqd.test")
	_, otherKey, _ := itest.TLSFiles(t, t.TempDir(), "static.hqd.test")
	unreadable := filepath.Join(dir, "missing-key.pem")
	for _, tc := range []struct{ name, cert, key, want string }{
		{"unreadable key", certFile, unreadable, "HQD_TLS_KEY_FILE: the key file: open " + unreadable},
		{"key of another certificate", certFile, otherKey, "does not match"},
		{"not a certificate", keyFile, keyFile, "HQD_TLS_CERT_FILE, HQD_TLS_KEY_FILE: the certificate and key files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := execHQD(tlsEnv(t, "127.0.0.1:0", "HQD_DATA_DIR="+t.TempDir(), "HQD_TLS_CERT_FILE="+tc.cert, "HQD_TLS_KEY_FILE="+tc.key), "serve")
			out, _ := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() == 0 || !strings.Contains(string(out), tc.want) {
				t.Errorf("exit %d: %s, want a refusal naming %s", cmd.ProcessState.ExitCode(), out, tc.want)
			}
		})
	}
}
