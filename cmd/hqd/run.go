package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/auth/devidp"
	"github.com/quantapix/hqd/internal/certs"
	"github.com/quantapix/hqd/internal/files"
	"github.com/quantapix/hqd/internal/jobs"
	"github.com/quantapix/hqd/internal/lake"
	"github.com/quantapix/hqd/internal/version"
)

const usage = `Usage: hqd <command> [--setting=value ...]

Commands:
  serve     run in production (settings: hqd serve --help)
  dev       run locally with no dependencies (settings: hqd dev --help)
  version   print the version
  ssm-settings [--path=/hqd/] [--out=/etc/hqd/hqd.env]
            write the settings file from the SSM parameters under a path
            (the EC2 host runs it before every start: hqd-ssm.conf)
`

// run is main with the outside world passed in, so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "hqd", version.Version)
		return nil
	case "help", "--help", "-h", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	case "ssm-settings":
		return ssmSettings(ctx, args[1:], stdout, stderr)
	case "serve", "dev":
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
	cfg, err := parseConfig(args[0], args[1:], getenv, environ, stdout, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg.LogLevel)
	app, err := newApp(ctx, cfg, log, stdout)
	if err != nil {
		return err
	}
	if cfg.Mode == "dev" {
		printDevBanner(stderr, app)
	}
	return app.Run(ctx)
}

// newZapLogger is certmagic's logger: JSON lines on the same stream, at
// the same level, marked as certmagic's.
func newZapLogger(w io.Writer, level string) *zap.Logger {
	var l zapcore.Level
	_ = l.UnmarshalText([]byte(level)) // validated with the configuration
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey, enc.MessageKey, enc.EncodeTime = "time", "msg", zapcore.RFC3339NanoTimeEncoder
	enc.EncodeLevel = zapcore.CapitalLevelEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(w), l)).With(zap.String("pkg", "certmagic"))
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated with the configuration
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

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

	issuers := cfg.Issuers
	if cfg.devIDP() {
		a.devIDP, err = devidp.New(devidp.Config{
			Dir: filepath.Join(cfg.DataDir, "dev-idp"), BaseURL: a.publicURL, PoolID: cfg.PoolID, ClientID: cfg.ClientIDs[0],
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
	// Logout's revocations first: the verifier refuses what they hold.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("HQD_DATA_DIR: %w", err)
	}
	rev, err := auth.OpenRevocations(filepath.Join(cfg.DataDir, "revocations.json"))
	if err != nil {
		return nil, err
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

// newJobs builds the verifier's job manager: isolation detected once, the
// lake runner, the result cache and the routes.
func (a *App) newJobs() error {
	cfg := a.cfg
	a.shutdown = make(chan struct{})
	bin := cfg.LakeBin
	if p, err := exec.LookPath(bin); err == nil {
		bin = p
	}
	if abs, err := filepath.Abs(bin); err == nil {
		bin = abs // the path lake has inside the sandbox too
	}
	var jobRunner jobs.Runner
	if st, err := os.Stat(cfg.JobSocket); err == nil && st.Mode()&os.ModeSocket != 0 {
		// Under systemd: the job units limit and sandbox the runs; hqd's
		// own cgroups do not matter (its unit has none to give).
		jobRunner = a.newUnitSandbox(bin)
	} else {
		a.iso = lake.DetectIsolation(cfg.JobsUnconfined)
		if n, err := a.iso.Sweep(); err != nil {
			a.log.Warn("removing the job cgroups of an earlier daemon", "removed", n, "err", err)
		} else if n > 0 {
			a.log.Warn("removed the job cgroups of an earlier daemon that did not stop cleanly", "removed", n)
		}
		a.log.Info("job isolation", "mode", a.iso.Mode, "detail", a.iso.Detail)
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding hqd's own executable for the job helper: %w", err)
		}
		helper, what := lake.Helper(self)
		a.log.Info("job helper", "helper", what)
		runner := &lake.Runner{
			Bin: bin, Self: helper, Iso: a.iso, Unconfined: cfg.JobsUnconfined, ScratchDir: os.TempDir(),
			Limits: lake.Limits{Memory: cfg.JobMemory, Pids: int64(cfg.JobPids), CPU: cfg.JobCPU, Timeout: cfg.JobTimeout},
		}
		a.sandbox = a.newSandbox(runner)
		jobRunner = runner
	}
	cache, err := lake.NewCache(cfg.LakeCacheDir)
	if err != nil {
		return fmt.Errorf("HQD_LAKE_CACHE_DIR: %w", err)
	}
	a.jobs = jobs.NewManager(jobs.Config{
		MaxRunning: cfg.JobsMaxRunning, MaxQueued: cfg.JobsMaxQueued, MaxPerUser: cfg.JobsMaxPerUser,
	}, jobRunner, cache, a.log, a.reg)
	a.jobRoutes = jobs.NewHandlers(jobs.HandlersConfig{Manager: a.jobs, Verifier: a.verifier, VerifierDir: cfg.VerifierDir, LakeBin: bin,
		EvaluatorDir: cfg.EvaluatorDir, EvaluatorExe: cfg.EvaluatorExe,
		MaxSource: cfg.MaxSource, Shutdown: a.shutdown,
		Available:          a.jobsAvailable(bin, cfg.VerifierDir, "verifier", "HQD_VERIFIER_DIR"),
		EvaluatorAvailable: a.jobsAvailable(bin, cfg.EvaluatorDir, "evaluator", "HQD_EVALUATOR_DIR")}, a.reg)
	return nil
}

// Sandbox modes, as /readyz names them.
const (
	sandboxNamespaces = "namespaces" // hqd as root: user, PID, mount and network namespaces, a uid per run
	sandboxUnits      = "units"      // under systemd: the same, in an hqd-job@ unit per run with a user of its own
	sandboxNone       = "none"       // no sandbox can be made: jobs are refused
	sandboxOff        = "off"        // none, and HQD_JOBS_UNCONFINED=1 runs jobs anyway
)

// newSandbox decides how runs are sandboxed, tries it once with a trial
// run, and sets runner.Box. It answers the mode.
func (a *App) newSandbox(runner *lake.Runner) string {
	fail := func(why string, err error) string {
		a.sandboxWhy = why
		a.log.Warn("no job sandbox", "why", why, "err", err, "unconfined", a.cfg.JobsUnconfined)
		if a.cfg.JobsUnconfined {
			return sandboxOff
		}
		return sandboxNone
	}
	if a.iso.Mode == lake.IsolationNone {
		return fail("no cgroups for jobs on this host", nil)
	}
	if os.Geteuid() != 0 {
		return fail("hqd runs as an ordinary user: a run's own uid and namespaces need hqd as root", nil)
	}
	first, size, _ := parseUIDs(a.cfg.JobUIDs) // validated with the configuration
	runner.Box = lake.NewSandboxing(runner.Bin, lake.NewUIDPool(first, size))
	dir, done, err := a.trialProject()
	if err == nil {
		defer done()
		err = runner.CheckSandbox(dir)
	}
	if err != nil {
		runner.Box = nil
		return fail("a trial run could not be sandboxed on this host", err)
	}
	a.log.Info("job sandbox", "mode", sandboxNamespaces, "uids", a.cfg.JobUIDs, "readOnly", runner.Box.ReadOnly)
	return sandboxNamespaces
}

// trialProject is a project directory for a trial run: the verifier's or
// the evaluator's (which a job unit sees too: hqd's /tmp is its own), else
// an empty one of our own.
func (a *App) trialProject() (dir string, done func(), err error) {
	for _, d := range []string{a.cfg.VerifierDir, a.cfg.EvaluatorDir} {
		if st, err := os.Stat(d); d != "" && err == nil && st.IsDir() {
			return d, func() {}, nil
		}
	}
	dir, err = os.MkdirTemp("", "hqd-sandbox-check-")
	if err != nil {
		return "", nil, err
	}
	_ = os.Chmod(dir, 0o755)
	return dir, func() { os.RemoveAll(dir) }, nil
}

// newUnitSandbox runs jobs through the job socket (HQD_JOB_SOCKET): each
// in an hqd-job@ unit that systemd starts with a user of its own, which
// sandboxes and limits it. hqd itself then needs no privilege at all.
func (a *App) newUnitSandbox(bin string) jobs.Runner {
	cfg := a.cfg
	rm := &lake.Remote{Socket: cfg.JobSocket, Bin: bin,
		Limits: lake.Limits{Memory: cfg.JobMemory, Pids: int64(cfg.JobPids), CPU: cfg.JobCPU, Timeout: cfg.JobTimeout}}
	a.sandbox = sandboxUnits
	dir, done, err := a.trialProject()
	iso := ""
	if err == nil {
		defer done()
		iso, err = rm.Check(dir)
	}
	if err != nil {
		a.sandbox, a.sandboxWhy = sandboxNone, "a trial run in a job unit failed"
		a.log.Warn("no job sandbox", "why", a.sandboxWhy, "socket", cfg.JobSocket, "err", err)
		iso = lake.IsolationNone
	} else {
		a.log.Info("job sandbox", "mode", sandboxUnits, "socket", cfg.JobSocket, "isolation", iso)
	}
	// Limits are the units' own: hqd's cgroups (none under its unit) do
	// not matter.
	a.iso = &lake.Isolation{Mode: iso, Detail: "in an hqd-job@ unit per run"}
	return rm
}

// jobsAvailable says, before any process starts, whether a job on the
// project in dir can run: isolation, the lake binary and the project must
// all be there.
func (a *App) jobsAvailable(bin, dir, what, setting string) jobs.Availability {
	return func() (bool, string) {
		switch {
		case a.sandbox == sandboxNone:
			return false, "jobs cannot run on this host: " + a.sandboxWhy
		case a.iso.Mode == lake.IsolationNone:
			return false, "jobs cannot run on this host: it has no cgroups for them"
		case dir == "":
			return false, "no " + what + " project is configured (" + setting + ")"
		}
		if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 {
			return false, "the lake binary " + a.cfg.LakeBin + " (HQD_LAKE_BIN) is not installed"
		}
		for _, f := range []string{"lakefile.lean", "lakefile.toml"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return true, ""
			}
		}
		return false, "the " + what + " directory is not a Lake project (no lakefile.lean or lakefile.toml)"
	}
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

// finishMoves settles the s3 store's moves that a crash or an unreachable
// S3 left half done: at start, then every minute until ctx ends.
func (a *App) finishMoves(ctx context.Context) {
	for {
		outcomes, err := a.s3.FinishMoves(ctx)
		if err != nil {
			a.log.Error("finishing moves", "err", err)
		}
		for _, o := range outcomes {
			if o.Err != nil {
				a.log.Warn("a move is still half done; retrying in a minute", "from", o.Src, "to", o.Dst, "err", o.Err)
			} else {
				a.log.Info("a half-done move was settled", "from", o.Src, "to", o.Dst, "outcome", o.Done)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
	}
}

// Addr is the bound main listener.
func (a *App) Addr() string { return a.ln.Addr().String() }

// Run serves until ctx ends, then shuts down within HQD_SHUTDOWN_GRACE.
func (a *App) Run(ctx context.Context) error {
	// Streams and long requests run under baseCtx, cancelled before
	// Shutdown so that they do not hold it up.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		TLSConfig:         a.tlsConfig,
	}
	var metricsSrv *http.Server
	if a.metricsLn != nil {
		metricsSrv = &http.Server{
			Handler:           promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}),
			ReadHeaderTimeout: 10 * time.Second,
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if a.tlsConfig != nil {
			err = srv.ServeTLS(a.ln, "", "")
		} else {
			err = srv.Serve(a.ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving %s: %w", a.ln.Addr(), err)
	})
	if metricsSrv != nil {
		g.Go(func() error {
			if err := metricsSrv.Serve(a.metricsLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving metrics: %w", err)
			}
			return nil
		})
	}
	var redirectSrv *http.Server
	if a.httpLn != nil {
		redirectSrv = &http.Server{Handler: a.certs.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second,
			ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
		g.Go(func() error {
			if err := redirectSrv.Serve(a.httpLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving %s: %w", a.httpLn.Addr(), err)
			}
			return nil
		})
	}
	if err := a.verifier.Start(baseCtx); err != nil {
		return err
	}
	if a.s3 != nil {
		go a.finishMoves(baseCtx)
	}
	if a.certs != nil {
		// After the listeners serve: TLS-ALPN-01 is answered by the HTTPS one.
		if err := a.certs.Start(baseCtx); err != nil {
			return err
		}
	}
	// SIGHUP (systemctl reload) reloads the certificates, and never ends
	// hqd: without TLS there is nothing to reload, and Go's default for
	// SIGHUP would exit.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g.Go(func() error {
		for {
			select {
			case <-hup:
				if a.certs != nil {
					_ = a.certs.Reload() // logged; the old certificate stays
				} else {
					a.log.Info("SIGHUP: nothing to reload (no TLS certificates)")
				}
			case <-gctx.Done():
				return nil
			}
		}
	})
	a.log.Info("listening", "url", a.publicURL, "addr", a.ln.Addr().String(), "http", addrOf(a.httpLn), "tls", a.tlsConfig != nil,
		"metrics", metricsAddr(a.metricsLn), "storage", a.cfg.Storage, "version", version.Version)
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady) // no-op outside systemd

	g.Go(func() error {
		a.jobs.Run(gctx)
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
		close(a.shutdown) // open streams get a shutdown event before they close
		a.log.Info("shutting down", "grace", a.cfg.ShutdownGrace.String())
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownGrace)
		defer cancel()
		cancelBase()
		a.jobs.Close() // kills running jobs; their streams end with done
		err := srv.Shutdown(sctx)
		if err == nil {
			err = a.jobRoutes.Wait(sctx) // streams that left net/http said goodbye too
		}
		if metricsSrv != nil {
			_ = metricsSrv.Shutdown(sctx) // scrapes are short; the main server's error is the one that matters
		}
		if redirectSrv != nil {
			_ = redirectSrv.Shutdown(sctx) // redirects are short, as above
		}
		a.verifier.Close()
		if a.certs != nil {
			a.certs.Stop()
		}
		if err != nil {
			srv.Close()
			return fmt.Errorf("shutdown: in-flight requests outlived HQD_SHUTDOWN_GRACE: %w", err)
		}
		return nil
	})
	err := g.Wait()
	a.log.Info("stopped")
	return err
}

func metricsAddr(ln net.Listener) string {
	if ln == nil {
		return "off"
	}
	return ln.Addr().String()
}

func printDevBanner(w io.Writer, a *App) {
	u := a.publicURL
	fmt.Fprintf(w, `
hqd dev is serving %[1]s
  files:    %[2]s
  accounts: %[3]s (dev identity provider; pool %[4]s, client %[5]s)

Sign up, sign in and keep a file:
  curl -s %[1]s/dev/cognito/ -H 'X-Amz-Target: AWSCognitoIdentityProviderService.SignUp' -H 'Content-Type: application/x-amz-json-1.1' \
    -d '{"ClientId":"%[5]s","Username":"me@example.com","Password":"Passw0rd!"}'
  TOKEN=$(curl -s %[1]s/dev/cognito/ -H 'X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth' -H 'Content-Type: application/x-amz-json-1.1' \
    -d '{"ClientId":"%[5]s","AuthFlow":"USER_PASSWORD_AUTH","AuthParameters":{"USERNAME":"me@example.com","PASSWORD":"Passw0rd!"}}' | sed 's/.*"AccessToken":"\([^"]*\)".*/\1/')
  curl -s -X PUT '%[1]s/api/files/notes/hello.md?raw=1' -H "Authorization: Bearer $TOKEN" --data-binary 'hello'
  curl -s '%[1]s/api/files?delimiter=/' -H "Authorization: Bearer $TOKEN"

`, u, a.cfg.StorageDir, filepath.Join(a.cfg.DataDir, "dev-idp"), a.cfg.PoolID, a.cfg.ClientIDs[0])
}
