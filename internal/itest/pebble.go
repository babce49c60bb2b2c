package itest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Pebble is a running Pebble ACME server with pebble-challtestsrv as its
// DNS: only names added with AddHost resolve.
type Pebble struct {
	Directory string // the ACME directory URL
	CARoots   string // PEM file that Pebble's own HTTPS certificate chains to
	mgmt      string // management URL
	dnsMgmt   string // challtestsrv management URL
	proc      *process
	client    *http.Client
}

// PebbleOptions configure a Pebble.
type PebbleOptions struct {
	HTTPPort, TLSPort int      // where Pebble validates HTTP-01 and TLS-ALPN-01
	Validity          uint64   // seconds; Pebble's default (90 days) when 0
	Blocked           []string // names Pebble refuses to issue for
}

// StartPebble starts challtestsrv and Pebble; they stop when the test ends.
// No challenge is skipped: PEBBLE_VA_ALWAYS_VALID stays off.
func StartPebble(tb testing.TB, opt PebbleOptions) *Pebble {
	tb.Helper()
	pebbleBin := Tool(tb, "pebble")
	challBin := Tool(tb, "pebble-challtestsrv")
	dir := tb.TempDir()
	dnsPort, dnsMgmt := FreePort(tb), FreePort(tb)
	chall := exec.Command(challBin, "-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort), "-management", fmt.Sprintf("127.0.0.1:%d", dnsMgmt),
		"-defaultIPv4", "", "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")
	cp := start(tb, chall)
	tb.Cleanup(cp.Stop)

	certFile, keyFile, rootFile := TLSFiles(tb, dir, "127.0.0.1", "localhost")
	acmePort, mgmtPort := FreePort(tb), FreePort(tb)
	profile := map[string]any{"description": "hqd tests", "validityPeriod": opt.Validity}
	if opt.Validity == 0 {
		profile["validityPeriod"] = 7776000
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": fmt.Sprintf("127.0.0.1:%d", acmePort), "managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate": certFile, "privateKey": keyFile, "httpPort": opt.HTTPPort, "tlsPort": opt.TLSPort,
		"ocspResponderURL": "", "externalAccountBindingRequired": false, "domainBlocklist": append([]string{"blocked.invalid"}, opt.Blocked...),
		"retryAfter": map[string]int{"authz": 1, "order": 1}, "keyAlgorithm": "ecdsa",
		"profiles": map[string]any{"default": profile},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(pebbleBin, "-config", cfgFile, "-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort))
	cmd.Env = append(cmd.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_VA_ALWAYS_VALID=0", "PEBBLE_AUTHZREUSE=0")
	p := &Pebble{
		Directory: fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort), CARoots: rootFile,
		mgmt: fmt.Sprintf("https://127.0.0.1:%d", mgmtPort), dnsMgmt: fmt.Sprintf("http://127.0.0.1:%d", dnsMgmt),
	}
	p.proc = start(tb, cmd)
	tb.Cleanup(p.proc.Stop)
	pool := x509.NewCertPool()
	rootPEM, _ := os.ReadFile(rootFile)
	pool.AppendCertsFromPEM(rootPEM)
	p.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := p.client.Get(p.Directory)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("Pebble did not start: %v\n%s", err, p.proc.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := waitHTTP(p.dnsMgmt+"/", 10*time.Second, cp.exited); err != nil {
		tb.Fatalf("challtestsrv did not start: %v\n%s", err, cp.log.String())
	}
	return p
}

// AddHost makes name resolve to ip for Pebble.
func (p *Pebble) AddHost(tb testing.TB, name, ip string) {
	tb.Helper()
	b, _ := json.Marshal(map[string]any{"host": name, "addresses": []string{ip}})
	resp, err := http.Post(p.dnsMgmt+"/add-a", "application/json", bytes.NewReader(b))
	if err != nil || resp.StatusCode != 200 {
		tb.Fatalf("adding %s to challtestsrv: %v %v", name, err, resp)
	}
	resp.Body.Close()
}

// IssuerRoots is a pool with Pebble's issuing root: what a client that
// trusts only Pebble's certificates trusts.
func (p *Pebble) IssuerRoots(tb testing.TB) *x509.CertPool {
	tb.Helper()
	resp, err := p.client.Get(p.mgmt + "/roots/0")
	if err != nil {
		tb.Fatalf("fetching Pebble's root: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		tb.Fatalf("Pebble's root is not PEM: %s", b)
	}
	return pool
}

// Orders counts the orders Pebble has accepted so far.
func (p *Pebble) Orders() int {
	return strings.Count(p.proc.Log(), "Added order")
}

// Log is what Pebble printed.
func (p *Pebble) Log() string { return p.proc.Log() }

// TLSFiles makes a CA and a certificate for hosts (names or IPs) signed by
// it, and writes them as PEM files into dir: cert.pem, key.pem, root.pem.
func TLSFiles(tb testing.TB, dir string, hosts ...string) (certFile, keyFile, rootFile string) {
	tb.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	ca := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "hqd test CA " + serial.String()},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile, rootFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "root.pem")
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", leafDER)
	write(keyFile, "EC PRIVATE KEY", keyDER)
	write(rootFile, "CERTIFICATE", caDER)
	return certFile, keyFile, rootFile
}
