// Package certs owns the daemon's TLS certificates (SPEC §8): ACME
// certificates obtained, stored and renewed by certmagic for HQD_DOMAINS,
// or a static certificate and key reloaded on SIGHUP. It reports their
// state to /readyz and as hqd_certificate_expiry_timestamp_seconds. It
// knows nothing about what is served over TLS.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Config configures the certificates.
type Config struct {
	// ACME: certificates for Domains from CA.
	Domains []string
	CA      string
	CARoots string // PEM file of roots to trust for the CA's own HTTPS (e.g. Pebble's)
	Email   string
	Dir     string // where certmagic keeps accounts and certificates
	// HTTPSAddr is the HTTPS listener (TLS-ALPN-01); HTTPAddr the plain-HTTP
	// one, "" when off (then no HTTP-01).
	HTTPSAddr string
	HTTPAddr  string

	// Static: a certificate and key in PEM files.
	CertFile, KeyFile string
}

// ReadyWithin is how long a managed certificate must still be valid for
// the daemon to call itself ready (SPEC §3).
const ReadyWithin = 7 * 24 * time.Hour

// Manager serves certificates to the TLS listener.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	magic  *certmagic.Config
	cache  *certmagic.Cache
	issuer *certmagic.ACMEIssuer

	static    atomic.Pointer[tls.Certificate]
	mu        sync.Mutex
	failures  map[string]string // domain → why its last attempt failed
	reloadErr string
}

// New prepares the certificates; Start begins obtaining managed ones. A
// static certificate that cannot be loaded is an error here, so hqd never
// starts without the TLS it was asked for.
func New(cfg Config, log *slog.Logger, zl *zap.Logger, reg prometheus.Registerer) (*Manager, error) {
	m := &Manager{cfg: cfg, log: log.With("pkg", "certs"), failures: map[string]string{}}
	switch {
	case cfg.CertFile != "":
		cert, err := loadStatic(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		m.static.Store(cert)
	case len(cfg.Domains) > 0:
		if err := m.newMagic(zl); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("certs: neither domains nor a static certificate")
	}
	if reg != nil {
		reg.MustRegister(&expiryCollector{m: m})
	}
	return m, nil
}

func (m *Manager) newMagic(zl *zap.Logger) error {
	cfg := m.cfg
	var roots *x509.CertPool
	if cfg.CARoots != "" {
		pem, err := os.ReadFile(cfg.CARoots)
		if err != nil {
			return fmt.Errorf("the ACME CA's roots: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("the ACME CA's roots: %s holds no PEM certificate", cfg.CARoots)
		}
	}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		Logger:           zl,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: cfg.Dir},
		Logger:  zl,
		OnEvent: m.onEvent,
	})
	httpsHost, httpsPort, err := splitPort(cfg.HTTPSAddr)
	if err != nil {
		return fmt.Errorf("the HTTPS listener's address: %w", err)
	}
	iss := certmagic.ACMEIssuer{
		CA: cfg.CA, Email: cfg.Email, Agreed: true, TrustedRoots: roots, Logger: zl,
		// The challenge servers are hqd's own listeners, already bound:
		// certmagic finds the ports taken and answers through the TLS
		// config and the HTTP handler instead.
		ListenHost: httpsHost, AltTLSALPNPort: httpsPort,
		DisableHTTPChallenge: cfg.HTTPAddr == "",
	}
	if cfg.HTTPAddr != "" {
		_, httpPort, err := splitPort(cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("the HTTP listener's address: %w", err)
		}
		iss.AltHTTPPort = httpPort
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, iss)
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	return nil
}

func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return host, port, err
}

// onEvent records why a certificate could not be obtained, for /readyz and
// one log line that says which name and why.
func (m *Manager) onEvent(ctx context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	switch event {
	case "cert_failed":
		err, _ := data["error"].(error)
		why := "unknown error"
		if err != nil {
			why = err.Error()
		}
		m.mu.Lock()
		m.failures[name] = why
		m.mu.Unlock()
		m.log.Error("certificate not obtained", "domain", name, "renewal", data["renewal"], "err", why)
	case "cert_obtained":
		m.mu.Lock()
		delete(m.failures, name)
		m.mu.Unlock()
		m.log.Info("certificate obtained", "domain", name, "renewal", data["renewal"])
	}
	return nil
}

// Start begins managing the domains: certificates in storage are loaded
// (without contacting the CA when they are still good), missing ones are
// obtained and all are renewed in the background. The listeners must be
// serving already: TLS-ALPN-01 is answered by the HTTPS listener.
func (m *Manager) Start(ctx context.Context) error {
	if m.magic == nil {
		return nil
	}
	if err := m.magic.ManageAsync(ctx, m.cfg.Domains); err != nil {
		return fmt.Errorf("managing certificates for %s: %w", strings.Join(m.cfg.Domains, ", "), err)
	}
	return nil
}

// Stop ends the background maintenance.
func (m *Manager) Stop() {
	if m.cache != nil {
		m.cache.Stop()
	}
}

// TLSConfig is the HTTPS listener's configuration: TLS 1.2 or later,
// HTTP/2 first, and the ACME TLS-ALPN protocol for challenges.
func (m *Manager) TLSConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if m.magic != nil {
		mc := m.magic.TLSConfig()
		c.GetCertificate = mc.GetCertificate
		c.NextProtos = append(c.NextProtos, mc.NextProtos...)
	} else {
		c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return m.static.Load(), nil }
	}
	return c
}

// Reload reads the static certificate and key again (SIGHUP). On failure
// the current certificate stays in use and the failure is reported.
func (m *Manager) Reload() error {
	if m.cfg.CertFile == "" {
		return nil
	}
	cert, err := loadStatic(m.cfg.CertFile, m.cfg.KeyFile)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.reloadErr = err.Error()
		m.log.Error("certificate not reloaded; the previous one stays in use", "err", err)
		return err
	}
	m.reloadErr = ""
	m.static.Store(cert)
	m.log.Info("certificate reloaded", "names", cert.Leaf.DNSNames, "notAfter", cert.Leaf.NotAfter)
	return nil
}

// loadStatic reads a certificate and its key, and says which is wrong.
func loadStatic(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("the certificate file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("the key file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, fmt.Errorf("the key in %s does not match the certificate in %s", keyFile, certFile)
		}
		return nil, fmt.Errorf("the certificate and key files: %w", err)
	}
	return &cert, nil
}

// HTTPHandler is the plain-HTTP listener: ACME HTTP-01 challenges, and a
// redirect to HTTPS for everything else.
func (m *Manager) HTTPHandler() http.Handler {
	_, httpsPort, _ := splitPort(m.cfg.HTTPSAddr)
	redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" || strings.ContainsAny(host, "/\\@") {
			http.Error(w, "no host", http.StatusBadRequest)
			return
		}
		if httpsPort != 443 && httpsPort != 0 {
			host = net.JoinHostPort(host, strconv.Itoa(httpsPort))
		}
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
	if m.issuer != nil {
		return m.issuer.HTTPChallengeHandler(redirect)
	}
	return redirect
}

// Status is one certificate's state, by name.
type Status struct {
	OK       bool   `json:"ok"`
	NotAfter string `json:"notAfter,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Ready reports every certificate. For managed certificates ok is false
// when one is missing or expires within ReadyWithin; a static certificate
// is reported but does not fail readiness (SPEC §3).
func (m *Manager) Ready(now time.Time) (ok bool, detail map[string]Status) {
	detail = map[string]Status{}
	ok = true
	m.mu.Lock()
	defer m.mu.Unlock()
	if cert := m.static.Load(); cert != nil {
		st := Status{OK: true, NotAfter: cert.Leaf.NotAfter.UTC().Format(time.RFC3339), Detail: "static certificate"}
		if m.reloadErr != "" {
			st.Detail = "static certificate; the last reload failed: " + m.reloadErr
		}
		if cert.Leaf.NotAfter.Before(now) {
			st.OK, st.Detail = false, "the static certificate has expired"
		}
		detail["static"] = st
		return ok, detail
	}
	for _, d := range m.cfg.Domains {
		st := Status{OK: true}
		notAfter, found := m.notAfter(d)
		switch {
		case !found:
			st = Status{Detail: "no certificate yet"}
			if why := m.failures[d]; why != "" {
				st.Detail = "no certificate: " + why
			}
		case notAfter.Sub(now) < ReadyWithin:
			st = Status{NotAfter: notAfter.UTC().Format(time.RFC3339), Detail: "expires within 7 days"}
			if why := m.failures[d]; why != "" {
				st.Detail += "; renewal failed: " + why
			}
		default:
			st.NotAfter = notAfter.UTC().Format(time.RFC3339)
		}
		ok = ok && st.OK
		detail[d] = st
	}
	return ok, detail
}

// notAfter is the latest expiry among the cached certificates for name.
func (m *Manager) notAfter(name string) (time.Time, bool) {
	var latest time.Time
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && c.Leaf.NotAfter.After(latest) {
			latest = c.Leaf.NotAfter
		}
	}
	return latest, !latest.IsZero()
}

// expiryCollector reads the certificates' expiry at scrape time.
type expiryCollector struct{ m *Manager }

var expiryDesc = prometheus.NewDesc("hqd_certificate_expiry_timestamp_seconds",
	"When the certificate served for a domain expires (Unix time).", []string{"domain"}, nil)

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	if cert := c.m.static.Load(); cert != nil {
		names := append([]string(nil), cert.Leaf.DNSNames...)
		if len(names) == 0 {
			names = []string{"static"}
		}
		sort.Strings(names)
		for _, n := range names {
			ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(cert.Leaf.NotAfter.Unix()), n)
		}
		return
	}
	for _, d := range c.m.cfg.Domains {
		if t, ok := c.m.notAfter(d); ok {
			ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(t.Unix()), d)
		}
	}
}
