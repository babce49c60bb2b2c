package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of hqd, filled from defaults, then HQD_*
// variables, then flags (flags win), and validated once.
type Config struct {
	Mode string // "serve" or "dev"

	Addr        string
	HTTPAddr    string
	PublicURL   string
	MetricsAddr string
	DataDir     string
	CORSOrigins []string
	LogLevel    string

	TLSCertFile string
	TLSKeyFile  string
	Domains     []string
	ACMECA      string
	ACMEEmail   string
	ACMECARoots string

	Storage     string
	StorageDir  string
	Region      string
	Bucket      string
	S3Endpoint  string
	S3PathStyle bool
	MaxUpload   int64
	// BodyIdleTimeout ends a request whose body sends nothing for so long.
	BodyIdleTimeout time.Duration

	PoolID          string
	ClientIDs       []string
	CognitoEndpoint string
	Issuers         []string
	JWKSURLs        []string
	RefreshRotation bool
	STSRoleARN      string
	KMSKeyARN       string
	STSEndpoint     string

	LakeBin        string
	VerifierDir    string
	EvaluatorDir   string
	EvaluatorExe   string
	LakeCacheDir   string
	JobsMaxRunning int
	JobsMaxQueued  int
	JobsMaxPerUser int
	MaxSource      int64
	JobTimeout     time.Duration
	JobMemory      int64
	JobPids        int
	JobCPU         float64
	JobsUnconfined bool
	JobUIDs        string
	JobSocket      string

	ShutdownGrace  time.Duration
	DevAllowRemote bool
}

// setting is one configuration knob: flag --name, variable HQD_NAME.
type setting struct {
	name  string
	def   string
	usage string
	set   func(string) error
}

func (s setting) env() string {
	return "HQD_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

// settings binds every knob to c. Defaults differ between serve and dev.
func settings(c *Config, mode string) []setting {
	dev := mode == "dev"
	pick := func(serve, devDefault string) string {
		if dev {
			return devDefault
		}
		return serve
	}
	return []setting{
		{"addr", pick(":8080", "127.0.0.1:8080"), "main listener (HTTPS when TLS is on); production sets :443", str(&c.Addr)},
		{"http-addr", "", "plain-HTTP listener for redirects to HTTPS; off when empty", str(&c.HTTPAddr)},
		{"public-url", "", "base URL clients use; derived from the main listener when empty", str(&c.PublicURL)},
		{"metrics-addr", "127.0.0.1:9100", "Prometheus /metrics listener, never the public one; off when empty", str(&c.MetricsAddr)},
		{"data-dir", pick("/var/lib/hqd", ".hqd"), "state: dev accounts and keys, certificates, caches", str(&c.DataDir)},
		{"cors-origins", "https://hq.indigoai.com,http://localhost:5173", "origins allowed by CORS", list(&c.CORSOrigins)},
		{"log-level", "info", "debug, info, warn or error", str(&c.LogLevel)},
		{"tls-cert-file", "", "static TLS certificate (PEM); with --tls-key-file", str(&c.TLSCertFile)},
		{"tls-key-file", "", "static TLS private key (PEM)", str(&c.TLSKeyFile)},
		{"domains", "", "hostnames to obtain ACME certificates for (TLS-ALPN-01 on HQD_ADDR, HTTP-01 on HQD_HTTP_ADDR)", list(&c.Domains)},
		{"acme-ca", "https://acme-v02.api.letsencrypt.org/directory", "ACME directory; staging: https://acme-staging-v02.api.letsencrypt.org/directory", str(&c.ACMECA)},
		{"acme-email", "", "ACME account e-mail, for the CA's notices", str(&c.ACMEEmail)},
		{"acme-ca-roots", "", "PEM file of roots to trust for the ACME CA itself (a private CA such as Pebble)", str(&c.ACMECARoots)},
		{"storage", pick("s3", "dir"), "file store: s3 or dir", str(&c.Storage)},
		{"storage-dir", "", "root of the dir store; $HQD_DATA_DIR/files when empty", str(&c.StorageDir)},
		{"aws-region", "us-east-1", "AWS region of the bucket and the user pool", str(&c.Region)},
		{"bucket", "", "S3 bucket (required with --storage=s3)", str(&c.Bucket)},
		{"s3-endpoint", "", "S3 endpoint for MinIO or LocalStack; AWS when empty", str(&c.S3Endpoint)},
		{"s3-path-style", "false", "path-style S3 addressing (MinIO, LocalStack)", boolean(&c.S3PathStyle)},
		{"max-upload", "5GiB", "largest raw upload", size(&c.MaxUpload)},
		{"body-idle-timeout", "30s", "a request body that sends nothing for this long ends the request (408)", duration(&c.BodyIdleTimeout)},
		{"cognito-user-pool-id", pick("", "us-east-1_hqddev"), "Cognito user pool id; names the default issuer", str(&c.PoolID)},
		{"cognito-client-ids", pick("", "hqddevclient"), "app client ids whose tokens are accepted; the first is used for sign-in", list(&c.ClientIDs)},
		{"cognito-endpoint", "", "Cognito endpoint for cognito-local or LocalStack; AWS when empty", str(&c.CognitoEndpoint)},
		{"jwt-issuer", "", "trusted issuers; both Cognito formats of the pool when empty (dev: its own provider)", list(&c.Issuers)},
		{"jwks-url", "", "one JWKS URL per issuer, in the same order; {issuer}/.well-known/jwks.json when empty", list(&c.JWKSURLs)},
		{"cognito-refresh-rotation", "false", "the app client rotates refresh tokens: refresh with GetTokensFromRefreshToken and return the new one", boolean(&c.RefreshRotation)},
		{"sts-role-arn", "", "role assumed for each user's S3 credentials on refresh; none issued when empty", str(&c.STSRoleARN)},
		{"kms-key-arn", "", "the bucket's SSE-KMS key: users' S3 credentials may use it through S3", str(&c.KMSKeyARN)},
		{"sts-endpoint", "", "STS endpoint for MinIO or LocalStack; AWS when empty (dev on MinIO: the S3 endpoint)", str(&c.STSEndpoint)},
		{"lake-bin", "lake", "the lake binary (looked up in PATH); jobs are refused while it is missing", str(&c.LakeBin)},
		{"verifier-dir", "", "the verifier's Lake project; POST /api/verify is refused while it is unset", str(&c.VerifierDir)},
		{"evaluator-dir", "", "the evaluator's Lake project; POST /api/evaluate runs are refused while it is unset", str(&c.EvaluatorDir)},
		{"evaluator-exe", "evaluate", "the executable `lake exe` runs for an evaluation", str(&c.EvaluatorExe)},
		{"lake-cache-dir", "", "cached job results; $HQD_DATA_DIR/lake-cache when empty", str(&c.LakeCacheDir)},
		{"jobs-max-running", "2", "jobs run at once; the rest wait in the queue", integer(&c.JobsMaxRunning)},
		{"jobs-max-queued", "32", "jobs that may wait; beyond, 429 queue_full", integer(&c.JobsMaxQueued)},
		{"jobs-max-per-user", "4", "active jobs of one user; beyond, 429 too_many_jobs", integer(&c.JobsMaxPerUser)},
		{"max-source", "1MiB", "largest source checked by POST /api/verify", size(&c.MaxSource)},
		{"job-timeout", "120s", "wall-clock limit of a run", duration(&c.JobTimeout)},
		{"job-memory", "1GiB", "memory limit of a run (its cgroup)", size(&c.JobMemory)},
		{"job-pids", "256", "process and thread limit of a run (its cgroup)", integer(&c.JobPids)},
		{"job-cpu", "1", "CPU limit of a run, in cores (its cgroup)", float(&c.JobCPU)},
		{"jobs-unconfined", "false", "run jobs even where no sandbox can be made (no root, no job socket): no sandbox, and cgroups only where usable (else rlimits and process-group kill)", boolean(&c.JobsUnconfined)},
		{"job-socket", "/run/hqd-job.sock", "where systemd starts a sandboxed unit per job (hqd-job.socket); used when it exists", str(&c.JobSocket)},
		{"job-uids", "1000000000-1000065535", "host uids for sandboxed runs when hqd runs as root, one per concurrent run (none may be a real user's)", str(&c.JobUIDs)},
		{"shutdown-grace", "25s", "time to finish in-flight requests on SIGTERM", duration(&c.ShutdownGrace)},
		{"dev-allow-remote", "false", "dev only: allow a non-loopback --addr", boolean(&c.DevAllowRemote)},
	}
}

func str(p *string) func(string) error {
	return func(s string) error { *p = s; return nil }
}

func list(p *[]string) func(string) error {
	return func(s string) error {
		*p = nil
		for v := range strings.SplitSeq(s, ",") {
			if v = strings.TrimSpace(v); v != "" {
				*p = append(*p, v)
			}
		}
		return nil
	}
}

func boolean(p *bool) func(string) error {
	return func(s string) error {
		switch s {
		case "true", "1":
			*p = true
		case "false", "0":
			*p = false
		default:
			return fmt.Errorf("%q is not a boolean (true, false, 1 or 0)", s)
		}
		return nil
	}
}

func duration(p *time.Duration) func(string) error {
	return func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration like 25s or 2m", s)
		}
		*p = d
		return nil
	}
}

func integer(p *int) func(string) error {
	return func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a whole number of at least 1", s)
		}
		*p = n
		return nil
	}
}

func float(p *float64) func(string) error {
	return func(s string) error {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 1024 {
			return fmt.Errorf("%q is not a positive number like 1 or 0.5", s)
		}
		*p = f
		return nil
	}
}

var sizeRE = regexp.MustCompile(`^([0-9]+)(|B|KiB|MiB|GiB|TiB)$`)

// parseSize reads plain bytes or IEC units: 268435456, 256MiB, 1GiB.
func parseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size like 268435456, 256MiB or 1GiB", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", s)
	}
	shift := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]]
	if n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}

func size(p *int64) func(string) error {
	return func(s string) error {
		n, err := parseSize(s)
		*p = n
		return err
	}
}

// errHelp is returned when --help was asked for; usage has been printed.
var errHelp = errors.New("help requested")

// parseConfig builds the configuration of mode from args and the
// environment. Unknown HQD_* variables are warned about on stderr.
func parseConfig(mode string, args []string, getenv func(string) string, environ []string, stdout, stderr io.Writer) (*Config, error) {
	c := &Config{Mode: mode}
	set := settings(c, mode)
	known := map[string]bool{}
	for _, s := range set {
		known[s.env()] = true
		if err := s.set(s.def); err != nil {
			panic("default of " + s.name + ": " + err.Error()) // a bug in the table
		}
	}
	// A variable that is set, even to "", applies ("off when empty" must
	// be expressible); getenv covers callers that pass no environ.
	present := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			present[k] = v
		}
	}
	var problems []error
	for _, s := range set {
		v, ok := present[s.env()]
		if !ok {
			v = getenv(s.env())
			ok = v != ""
		}
		if ok {
			if err := s.set(v); err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", s.env(), err))
			}
		}
	}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "HQD_") && !known[name] {
			fmt.Fprintf(stderr, "hqd: warning: ignoring unknown setting %s (see hqd %s --help)\n", name, mode)
		}
	}
	fs := flag.NewFlagSet("hqd "+mode, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, s := range set {
		fs.Func(s.name, s.usage, s.set)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, mode, set)
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (settings are --name=value)", fs.Arg(0))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	c.resolve()
	return c, c.validate()
}

func printUsage(w io.Writer, mode string, set []setting) {
	fmt.Fprintf(w, "Usage: hqd %s [--setting=value ...]\n\n", mode)
	if mode == "dev" {
		fmt.Fprintln(w, "Runs hqd with no dependencies: files under ./.hqd, the embedded dev identity provider, plain HTTP on 127.0.0.1:8080.")
	} else {
		fmt.Fprintln(w, "Runs hqd in production.")
	}
	fmt.Fprintln(w, "Every setting is a flag and an environment variable; flags win. Sizes take bytes or IEC units (256MiB),")
	fmt.Fprintln(w, "durations Go's syntax (25s), booleans true/false/1/0, lists commas.")
	fmt.Fprintln(w)
	for _, s := range set {
		def := s.def
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  --%s, %s (default %s)\n      %s\n", s.name, s.env(), def, s.usage)
	}
}

// resolve fills in the values derived from others: paths under the data
// dir, the default issuers of the pool, and MinIO as hqd dev's STS. It
// checks nothing (validate does, after it).
func (c *Config) resolve() {
	data := strings.TrimSuffix(c.DataDir, "/")
	if c.StorageDir == "" {
		c.StorageDir = data + "/files"
	}
	if c.LakeCacheDir == "" {
		c.LakeCacheDir = data + "/lake-cache"
	}
	if c.Mode == "dev" && c.Storage == "s3" && c.S3Endpoint != "" && c.STSRoleARN == "" && c.STSEndpoint == "" {
		// hqd dev on MinIO or LocalStack: they are the STS too, and MinIO
		// ignores the role ARN (it issues the root user's rights, narrowed
		// by the session policy).
		c.STSEndpoint, c.STSRoleARN = c.S3Endpoint, "arn:aws:iam::000000000000:role/hqd-dev-user"
	}
	if len(c.Issuers) == 0 && !c.devIDP() && c.PoolID != "" {
		c.Issuers = []string{
			"https://cognito-idp." + c.Region + ".amazonaws.com/" + c.PoolID,
			"https://issuer-cognito-idp." + c.Region + ".amazonaws.com/" + c.PoolID,
		}
	}
}

// validate checks the whole resolved configuration and names every
// problem; it changes nothing.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("HQD_ADDR: %q is not host:port", c.Addr)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("HQD_METRICS_ADDR: %q is not host:port", c.MetricsAddr)
		} else if c.MetricsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
			bad("HQD_METRICS_ADDR must differ from HQD_ADDR: metrics are never served on the public listener")
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("HQD_PUBLIC_URL: %q is not an http(s) URL", c.PublicURL)
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("HQD_LOG_LEVEL: %q is not debug, info, warn or error", c.LogLevel)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("HQD_TLS_CERT_FILE and HQD_TLS_KEY_FILE go together: set both or neither")
	}
	if len(c.Domains) > 0 && c.TLSCertFile != "" {
		bad("HQD_DOMAINS and HQD_TLS_CERT_FILE are alternatives: ACME certificates or a static one, not both")
	}
	for _, d := range c.Domains {
		if strings.ContainsAny(d, "/:@ ") || !strings.Contains(d, ".") {
			bad("HQD_DOMAINS: %q is not a hostname", d)
		}
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			bad("HQD_HTTP_ADDR: %q is not host:port", c.HTTPAddr)
		}
		if !c.TLS() {
			bad("HQD_HTTP_ADDR redirects to HTTPS and needs TLS: set HQD_DOMAINS or HQD_TLS_CERT_FILE")
		}
	}
	if len(c.Domains) > 0 {
		if u, err := url.Parse(c.ACMECA); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("HQD_ACME_CA: %q is not an https:// ACME directory URL", c.ACMECA)
		}
	}
	switch c.Storage {
	case "s3":
		if c.Bucket == "" {
			bad("HQD_BUCKET is required when HQD_STORAGE=s3")
		} else if len(c.Bucket) < 3 || len(c.Bucket) > 63 {
			bad("HQD_BUCKET: %q must be 3 to 63 characters", c.Bucket)
		}
		if c.Region == "" {
			bad("HQD_AWS_REGION is required when HQD_STORAGE=s3")
		}
	case "dir": // its directory defaults to one under the data dir (resolve)
	default:
		bad("HQD_STORAGE: %q is not s3 or dir", c.Storage)
	}
	if c.STSRoleARN != "" && c.Storage != "s3" {
		bad("HQD_STS_ROLE_ARN issues S3 credentials and needs HQD_STORAGE=s3")
	}
	if c.STSEndpoint != "" && c.STSRoleARN == "" {
		bad("HQD_STS_ENDPOINT is set but HQD_STS_ROLE_ARN is not: name the role to assume")
	}
	if _, _, err := parseUIDs(c.JobUIDs); err != nil {
		bad("HQD_JOB_UIDS: %v", err)
	}
	if c.BodyIdleTimeout <= 0 {
		bad("HQD_BODY_IDLE_TIMEOUT must be more than 0")
	}
	if c.MaxUpload <= 0 {
		bad("HQD_MAX_UPLOAD must be more than 0")
	}
	if len(c.ClientIDs) == 0 {
		bad("HQD_COGNITO_CLIENT_IDS is required: tokens are accepted only for known app clients")
	}
	if len(c.Issuers) == 0 && !c.devIDP() {
		bad("HQD_COGNITO_USER_POOL_ID (or HQD_JWT_ISSUER) is required to know whose tokens to trust")
	}
	if len(c.JWKSURLs) > 0 && len(c.JWKSURLs) != len(c.Issuers) {
		bad("HQD_JWKS_URL lists %d URLs for %d issuers: give one per issuer, in the same order", len(c.JWKSURLs), len(c.Issuers))
	}
	if c.Mode == "dev" && !c.DevAllowRemote {
		host, _, _ := net.SplitHostPort(c.Addr)
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			bad("HQD_ADDR: hqd dev listens on loopback only (%q); set HQD_DEV_ALLOW_REMOTE=1 to expose it", c.Addr)
		}
	}
	if c.Mode != "dev" && c.DevAllowRemote {
		bad("HQD_DEV_ALLOW_REMOTE applies to hqd dev only")
	}
	return errors.Join(errs...)
}

// parseUIDs reads a range of uids "first-last" of at least 16 uids, none
// of them root's or below 65536 (where a real account may live).
func parseUIDs(s string) (first, size int, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.ParseUint(a, 10, 32)
	hi, err2 := strconv.ParseUint(b, 10, 32)
	switch {
	case !ok || err1 != nil || err2 != nil || hi < lo:
		return 0, 0, fmt.Errorf("%q is not a range of uids like 1000000000-1000065535", s)
	case lo < 65536:
		return 0, 0, fmt.Errorf("%q starts below 65536, where the host's own users and nobody live", s)
	case hi-lo+1 < 16 || hi >= 1<<32-1:
		return 0, 0, fmt.Errorf("%q must hold at least 16 uids, below 4294967295", s)
	}
	return int(lo), int(hi - lo + 1), nil
}

// TLS says whether the main listener serves HTTPS.
func (c *Config) TLS() bool { return len(c.Domains) > 0 || c.TLSCertFile != "" }

// devIDP says whether the embedded dev identity provider issues the tokens:
// in dev mode, unless the issuer was pointed elsewhere.
func (c *Config) devIDP() bool { return c.Mode == "dev" && len(c.Issuers) == 0 }
