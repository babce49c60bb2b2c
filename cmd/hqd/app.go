package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/auth/devidp"
	"github.com/quantapix/hqd/internal/certs"
	"github.com/quantapix/hqd/internal/files"
	"github.com/quantapix/hqd/internal/jobs"
	"github.com/quantapix/hqd/internal/lake"
)

// App is a configured hqd with its listeners bound.
type App struct {
	cfg        *Config
	log        *slog.Logger
	stdout     io.Writer // where certmagic's zap logger writes
	reg        *prometheus.Registry
	ln         net.Listener
	metricsLn  net.Listener
	publicURL  string
	store      files.Store
	bucket     string
	s3         *files.S3 // the s3 store, whose half-done moves Run finishes
	verifier   *auth.Verifier
	sessions   *auth.Sessions
	devIDP     *devidp.Provider
	certs      *certs.Manager // nil for plain HTTP
	iso        *lake.Isolation
	sandbox    string // how runs are sandboxed: sandboxNamespaces, sandboxNone or sandboxOff
	sandboxWhy string // why there is no sandbox
	jobs       *jobs.Manager
	jobRoutes  *jobs.Handlers
	shutdown   chan struct{} // closed when shutdown begins: streams say goodbye
	tlsConfig  *tls.Config
	httpLn     net.Listener // the plain-HTTP redirect listener, if any
	handler    http.Handler
}

// newApp builds every part. The listeners are bound first: the public URL
// (and so the dev issuer) depends on the port actually bound.
func newApp(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) (_ *App, err error) {
	a := &App{cfg: cfg, log: log, reg: prometheus.NewRegistry(), stdout: stdout}
	defer func() {
		if err != nil {
			a.closeListeners()
		}
	}()
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if a.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("HQD_ADDR: %w", err)
	}
	if cfg.HTTPAddr != "" {
		if a.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("HQD_HTTP_ADDR: %w", err)
		}
	}
	if cfg.TLS() {
		a.certs, err = certs.New(certs.Config{
			Domains: cfg.Domains, CA: cfg.ACMECA, CARoots: cfg.ACMECARoots, Email: cfg.ACMEEmail,
			Dir: filepath.Join(cfg.DataDir, "certmagic"), HTTPSAddr: a.ln.Addr().String(), HTTPAddr: addrOf(a.httpLn),
			CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile,
		}, log, newZapLogger(a.stdout, cfg.LogLevel), a.reg)
		if err != nil {
			if cfg.TLSCertFile != "" {
				return nil, fmt.Errorf("HQD_TLS_CERT_FILE, HQD_TLS_KEY_FILE: %w", err)
			}
			return nil, fmt.Errorf("HQD_DOMAINS, HQD_ACME_*: %w", err)
		}
		a.tlsConfig = a.certs.TLSConfig()
	}
	if cfg.MetricsAddr != "" {
		if a.metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("HQD_METRICS_ADDR: %w", err)
		}
	}
	a.publicURL = cfg.PublicURL
	if a.publicURL == "" {
		a.publicURL = derivePublicURL(a.ln.Addr().(*net.TCPAddr), a.tlsConfig != nil)
		if len(cfg.Domains) > 0 {
			a.publicURL = "https://" + cfg.Domains[0]
			if p := a.ln.Addr().(*net.TCPAddr).Port; p != 443 {
				a.publicURL += ":" + strconv.Itoa(p)
			}
		}
	}
	a.publicURL = strings.TrimSuffix(a.publicURL, "/")

	switch cfg.Storage {
	case "dir":
		d, err := files.NewDir(cfg.StorageDir)
		if err != nil {
			return nil, err
		}
		a.store = files.Instrument(d, "dir", a.reg)
	case "s3":
		s, err := files.NewS3(ctx, files.S3Config{Bucket: cfg.Bucket, Region: cfg.Region, Endpoint: cfg.S3Endpoint, PathStyle: cfg.S3PathStyle, Journal: filepath.Join(cfg.DataDir, "moves")})
		if err != nil {
			return nil, err
		}
		a.store, a.bucket, a.s3 = files.Instrument(s, "s3", a.reg), cfg.Bucket, s
	}

	// Logout's revocations first: the verifier, the dev provider and the
	// job tickets all refuse what they hold.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("HQD_DATA_DIR: %w", err)
	}
	rev, err := auth.OpenRevocations(filepath.Join(cfg.DataDir, "revocations.json"))
	if err != nil {
		return nil, err
	}
	issuers := cfg.Issuers
	if cfg.devIDP() {
		a.devIDP, err = devidp.New(devidp.Config{
			Dir: filepath.Join(cfg.DataDir, "dev-idp"), BaseURL: a.publicURL, PoolID: cfg.PoolID, ClientID: cfg.ClientIDs[0],
			Revoked: func(issuer, originJTI, jti string) bool {
				return rev.Revoked(&auth.Identity{Issuer: issuer, OriginJTI: originJTI, JTI: jti})
			},
		}, log)
		if err != nil {
			return nil, err
		}
		issuers = []string{a.devIDP.Issuer()}
	}
	vc := auth.VerifierConfig{ClientIDs: cfg.ClientIDs}
	for i, is := range issuers {
		iss := auth.Issuer{URL: is}
		if i < len(cfg.JWKSURLs) {
			iss.JWKSURL = cfg.JWKSURLs[i]
		}
		vc.Issuers = append(vc.Issuers, iss)
	}
	if a.devIDP != nil {
		// hqd fetches its own JWKS over loopback, whatever the public URL is.
		vc.Issuers[0].JWKSURL = "http://" + loopbackAddr(a.ln.Addr().(*net.TCPAddr)) + "/dev/cognito/" + cfg.PoolID + "/.well-known/jwks.json"
		if a.tlsConfig != nil {
			vc.Issuers[0].JWKSURL = "https" + strings.TrimPrefix(vc.Issuers[0].JWKSURL, "http")
			vc.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // our own listener
		}
	}
	vc.Revoked = rev.Revoked
	if a.verifier, err = auth.NewVerifier(vc, log, a.reg); err != nil {
		return nil, err
	}
	if a.sessions, err = a.newSessions(ctx, rev); err != nil {
		return nil, err
	}
	if err := a.newJobs(); err != nil {
		return nil, err
	}
	a.handler = a.routes()
	return a, nil
}

// newSessions builds refresh and logout: a Cognito client (the dev identity
// provider over loopback in dev), STS when a role is configured, and the
// revocations kept in the data dir.
func (a *App) newSessions(ctx context.Context, rev *auth.Revocations) (*auth.Sessions, error) {
	cfg := a.cfg
	cognitoEndpoint := cfg.CognitoEndpoint
	if a.devIDP != nil {
		cognitoEndpoint = "http://" + loopbackAddr(a.ln.Addr().(*net.TCPAddr)) + "/dev/cognito/"
	}
	// A public app client's flows are unauthenticated: no AWS credentials.
	cogOpts := cip.Options{Region: cfg.Region, Credentials: aws.AnonymousCredentials{}, HTTPClient: &http.Client{Timeout: 10 * time.Second}, Retryer: quickRetryer()}
	if cognitoEndpoint != "" {
		cogOpts.BaseEndpoint = aws.String(cognitoEndpoint)
	}
	if a.devIDP != nil && a.tlsConfig != nil {
		cogOpts.BaseEndpoint = aws.String("https" + strings.TrimPrefix(cognitoEndpoint, "http"))
		cogOpts.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // our own listener
	}
	s := auth.Sessions{
		Verifier: a.verifier, Cognito: cip.New(cogOpts), ClientID: cfg.ClientIDs[0], Rotation: cfg.RefreshRotation,
		Bucket: a.bucket, Region: cfg.Region, KMSKeyARN: cfg.KMSKeyARN, Revocations: rev, RoleARN: cfg.STSRoleARN,
	}
	if cfg.STSRoleARN != "" {
		awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(cfg.Region))
		if err != nil {
			return nil, fmt.Errorf("loading AWS configuration for STS: %w", err)
		}
		s.STS = sts.NewFromConfig(awsCfg, func(o *sts.Options) {
			o.Retryer = quickRetryer()
			if cfg.STSEndpoint != "" {
				o.BaseEndpoint = aws.String(cfg.STSEndpoint)
			}
		})
	}
	return auth.NewSessions(s, a.reg), nil
}

// quickRetryer retries twice, briefly: a person waits on every try.
func quickRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.MaxBackoff = 200 * time.Millisecond
	})
}

// derivePublicURL is the URL of the bound listener, with 127.0.0.1 for an
// unspecified address.
func derivePublicURL(addr *net.TCPAddr, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host := loopbackAddr(addr)
	if tls && addr.Port == 443 || !tls && addr.Port == 80 {
		host = strings.TrimSuffix(host, ":"+fmt.Sprint(addr.Port))
	}
	return scheme + "://" + host
}

func loopbackAddr(addr *net.TCPAddr) string {
	ip := addr.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(addr.Port))
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

func (a *App) closeListeners() {
	if a.ln != nil {
		a.ln.Close()
	}
	if a.httpLn != nil {
		a.httpLn.Close()
	}
	if a.metricsLn != nil {
		a.metricsLn.Close()
	}
}

// Addr is the bound main listener.
func (a *App) Addr() string { return a.ln.Addr().String() }
