package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/quantapix/hqd/internal/hqpath"
)

// S3Config configures the S3 store.
type S3Config struct {
	Bucket    string
	Region    string
	Endpoint  string // "" for AWS; MinIO or LocalStack otherwise
	PathStyle bool
	// Credentials overrides the SDK's default chain (environment, shared
	// config, instance role); tests use it.
	Credentials aws.CredentialsProvider
	// Journal is a directory on the local disk where moves in flight are
	// recorded (see FinishMoves); required.
	Journal string
}

// S3 keeps files in one bucket.
type S3 struct {
	bucket   string
	client   *s3.Client
	uploader *manager.Uploader
	fast     *fastS3 // GET and small PUTs
	journal  *journal
}

// partSize is both the multipart part size and the largest body sent in a
// single PutObject; smaller known-size bodies are read into memory once.
const partSize = 8 << 20

// NewS3 makes the store; it does not contact S3 (see Ping).
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	// One pool of kept-alive connections sized for the daemon's concurrency:
	// the SDK's default keeps too few idle connections per host, and every
	// new TLS connection to S3 costs more than the request itself.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 256
		t.MaxIdleConnsPerHost = 256
		t.IdleConnTimeout = 90 * time.Second
	}).WithDialerOptions(func(d *net.Dialer) { d.Timeout = 5 * time.Second })
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.Region),
		config.WithHTTPClient(httpClient),
		// A few quick retries: a user waits on every one, and a store that
		// is down should answer 503 in well under a second or two.
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.MaxBackoff = 200 * time.Millisecond
			})
		}),
		// Checksums only where S3 requires them: MinIO and LocalStack differ
		// in which trailing checksums they accept, and ETags already cover
		// integrity end to end.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	up := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = partSize
		u.Concurrency = 2 // bounds memory: two parts in flight per upload
	})
	httpc := &http.Client{Transport: httpClient.GetTransport()}
	fast, err := newFastS3(cfg, awsCfg.Credentials, httpc)
	if err != nil {
		return nil, err
	}
	if cfg.Journal == "" {
		return nil, errors.New("S3 store: no directory for the move journal")
	}
	j, err := newJournal(cfg.Journal)
	if err != nil {
		return nil, err
	}
	return &S3{bucket: cfg.Bucket, client: client, uploader: up, fast: fast, journal: j}, nil
}

// Ping checks that the bucket is reachable with our credentials.
func (s *S3) Ping(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	return s3Err("ping", err)
}

// Get opens the object at key.
func (s *S3) Get(ctx context.Context, key string, opt GetOptions) (*Object, error) {
	return s.fast.Get(ctx, key, opt)
}

// parseContentRange reads "bytes first-last/total" or "bytes */total".
func parseContentRange(s string) (first, last, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	span, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	total, err := strconv.ParseInt(tot, 10, 64)
	if err != nil {
		return 0, 0, 0, false
	}
	if span == "*" {
		return 0, 0, total, true
	}
	a, b, found := strings.Cut(span, "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	return first, last, total, found && err1 == nil && err2 == nil
}

// Put writes the object. Bodies up to partSize go in one PutObject; larger
// or unknown-size bodies stream through a multipart upload, which S3 makes
// visible only when complete.
func (s *S3) Put(ctx context.Context, key string, body io.Reader, opt PutOptions) (Info, error) {
	ct := opt.ContentType
	if ct == "" {
		ct = hqpath.GuessType(key)
	}
	in := &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, ContentType: &ct}
	if opt.IfMatch != "" {
		in.IfMatch = aws.String(opt.IfMatch)
	}
	if opt.IfNoneMatch != "" {
		in.IfNoneMatch = aws.String(opt.IfNoneMatch)
	}
	var etag *string
	var size int64
	if opt.Size >= 0 && opt.Size <= partSize {
		buf := make([]byte, opt.Size)
		if _, err := io.ReadFull(body, buf); err != nil {
			return Info{}, fmt.Errorf("reading the body of %s: %w", key, err)
		}
		tag, err := s.fast.Put(ctx, key, buf, ct, opt)
		if err != nil {
			return Info{}, err
		}
		etag, size = &tag, opt.Size
	} else {
		cr := &countingReader{r: body}
		in.Body = cr
		out, err := s.uploader.Upload(ctx, in)
		if err != nil {
			return Info{}, putErr(err, opt)
		}
		if opt.Size >= 0 && cr.n != opt.Size {
			return Info{}, fmt.Errorf("writing %s: got %d bytes, want %d", key, cr.n, opt.Size)
		}
		etag, size = out.ETag, cr.n
	}
	return Info{Key: key, Size: size, ETag: aws.ToString(etag), LastModified: time.Now().UTC().Truncate(time.Second), ContentType: ct}, nil
}

// putErr translates a write's error: S3 answers an If-Match on a missing
// key with 404, which for a conditional write is a failed precondition.
func putErr(err error, opt PutOptions) error {
	err = s3Err("put", err)
	if errors.Is(err, ErrNotFound) && opt.IfMatch != "" {
		return ErrPrecondition
	}
	return err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Delete removes the object. S3 honours If-Match on DeleteObject, MinIO
// ignores it, so the ETag is checked here first; between that check and
// the delete, a write by another client can still be deleted on stores
// that ignore the header (documented in the README).
func (s *S3) Delete(ctx context.Context, key, ifMatch string) error {
	in := &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}
	if ifMatch != "" {
		head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
		if err := s3Err("delete", err); err != nil {
			if errors.Is(err, ErrNotFound) {
				return ErrPrecondition
			}
			return err
		}
		if !matchETag(ifMatch, aws.ToString(head.ETag)) {
			return ErrPrecondition
		}
		in.IfMatch = head.ETag
	}
	_, err := s.client.DeleteObject(ctx, in)
	if err := s3Err("delete", err); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// List returns one page of ListObjectsV2.
func (s *S3) List(ctx context.Context, opt ListOptions) (ListPage, error) {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &opt.Prefix, MaxKeys: aws.Int32(int32(opt.Limit))}
	if opt.Delimiter != "" {
		in.Delimiter = &opt.Delimiter
	}
	if opt.Token != "" {
		in.ContinuationToken = &opt.Token
	}
	out, err := s.client.ListObjectsV2(ctx, in)
	if err != nil {
		err = s3Err("list", err)
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "InvalidArgument" && opt.Token != "" {
			return ListPage{}, ErrBadToken
		}
		return ListPage{}, err
	}
	page := ListPage{Files: make([]Info, 0, len(out.Contents))}
	for _, o := range out.Contents {
		page.Files = append(page.Files, Info{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag), LastModified: aws.ToTime(o.LastModified).UTC()})
	}
	for _, p := range out.CommonPrefixes {
		page.Folders = append(page.Folders, aws.ToString(p.Prefix))
	}
	if aws.ToBool(out.IsTruncated) {
		page.Next = aws.ToString(out.NextContinuationToken)
	}
	return page, nil
}

// s3Err translates an SDK error into the package's outcomes.
func s3Err(op string, err error) error {
	if err == nil {
		return nil
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch {
	case code == "NoSuchKey" || code == "NotFound" || (status == http.StatusNotFound && code != "NoSuchBucket"):
		return fmt.Errorf("%w (%s)", ErrNotFound, op)
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %w", ErrPrecondition, err)
	case status == http.StatusNotModified || code == "NotModified":
		return fmt.Errorf("%w: %w", ErrNotModified, err)
	case code == "InvalidRange" || status == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%w: %w", ErrBadRange, err)
	case code == "ConditionalRequestConflict" || status == http.StatusConflict:
		return fmt.Errorf("%w: %w", ErrPrecondition, err)
	case status == 0 || status >= 500 || code == "SlowDown" || code == "RequestTimeout":
		return &UnavailableError{Op: op, Temporary: true, Err: err}
	case code == "InvalidArgument":
		return err // the caller knows what argument it sent
	}
	return &UnavailableError{Op: op, Err: err}
}
