package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"
)

// fastS3 serves the hot operations — GET and small PUTs — with a SigV4
// request over the shared connection pool, without the SDK's middleware
// stack, which costs more CPU per 4 KiB object than the object itself (see
// docs/BENCHMARKS.md, P1). Everything else, and every case it does not
// cover, goes through the SDK. Both are checked by the same conformance
// suite against MinIO.
type fastS3 struct {
	base      *url.URL // scheme and host of the endpoint
	pathStyle bool
	bucket    string
	region    string
	creds     aws.CredentialsProvider
	signer    *v4.Signer
	client    *http.Client
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func newFastS3(cfg S3Config, creds aws.CredentialsProvider, client *http.Client) (*fastS3, error) {
	endpoint := cfg.Endpoint
	pathStyle := cfg.PathStyle
	if endpoint == "" {
		endpoint = "https://s3." + cfg.Region + ".amazonaws.com"
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("S3 endpoint %q: not a URL", endpoint)
	}
	if !pathStyle && strings.Contains(cfg.Bucket, ".") {
		pathStyle = true // a dotted bucket breaks virtual-host TLS names
	}
	return &fastS3{base: u, pathStyle: pathStyle, bucket: cfg.Bucket, region: cfg.Region, creds: creds,
		signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }), client: client}, nil
}

// request builds and signs a request for key.
func (f *fastS3) request(ctx context.Context, method, key string, body []byte) (*http.Request, error) {
	escaped := httpbinding.EscapePath(key, false)
	u := *f.base
	if f.pathStyle {
		u.Path = strings.TrimSuffix(f.base.Path, "/") + "/" + f.bucket + "/" + key
		u.RawPath = strings.TrimSuffix(f.base.EscapedPath(), "/") + "/" + f.bucket + "/" + escaped
	} else {
		u.Host = f.bucket + "." + u.Host
		u.Path = "/" + key
		u.RawPath = "/" + escaped
	}
	var rd io.Reader
	hash := emptySHA256
	if body != nil {
		rd = bytes.NewReader(body)
		sum := sha256.Sum256(body)
		hash = hex.EncodeToString(sum[:])
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = int64(len(body))
	}
	req.Header.Set("X-Amz-Content-Sha256", hash)
	return req, nil
}

func (f *fastS3) sign(ctx context.Context, req *http.Request) error {
	c, err := f.creds.Retrieve(ctx)
	if err != nil {
		return &UnavailableError{Op: "credentials", Temporary: true, Err: err}
	}
	return f.signer.SignHTTP(ctx, c, req, req.Header.Get("X-Amz-Content-Sha256"), "s3", f.region, time.Now().UTC())
}

// do sends req, retrying once on a broken connection (both are idempotent
// here: a GET, or a PUT of the whole object).
func (f *fastS3) do(ctx context.Context, build func() (*http.Request, error)) (*http.Response, error) {
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		req, err := build()
		if err != nil {
			return nil, err
		}
		if err := f.sign(ctx, req); err != nil {
			return nil, err
		}
		resp, err := f.client.Do(req)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &UnavailableError{Op: "request", Temporary: true, Err: lastErr}
}

// statusErr translates an S3 error answer into the package's outcomes.
func statusErr(op string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	code := ""
	if i := bytes.Index(body, []byte("<Code>")); i >= 0 {
		if j := bytes.Index(body[i:], []byte("</Code>")); j > 0 {
			code = string(body[i+6 : i+j])
		}
	}
	err := fmt.Errorf("S3 answered %d %s", resp.StatusCode, code)
	switch {
	case resp.StatusCode == http.StatusNotFound && code != "NoSuchBucket":
		return fmt.Errorf("%w (%s)", ErrNotFound, op)
	case resp.StatusCode == http.StatusPreconditionFailed || resp.StatusCode == http.StatusConflict:
		return fmt.Errorf("%w: %w", ErrPrecondition, err)
	case resp.StatusCode == http.StatusNotModified:
		return fmt.Errorf("%w: %w", ErrNotModified, err)
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%w: %w", ErrBadRange, err)
	case resp.StatusCode >= 500 || code == "SlowDown":
		return &UnavailableError{Op: op, Temporary: true, Err: err}
	}
	return &UnavailableError{Op: op, Err: err}
}

// Get reads an object (see S3.Get).
func (f *fastS3) Get(ctx context.Context, key string, opt GetOptions) (*Object, error) {
	resp, err := f.do(ctx, func() (*http.Request, error) {
		req, err := f.request(ctx, http.MethodGet, key, nil)
		if err != nil {
			return nil, err
		}
		if opt.IfNoneMatch != "" {
			req.Header.Set("If-None-Match", opt.IfNoneMatch)
		}
		if r := opt.Range; r != nil {
			switch {
			case r.Suffix > 0:
				req.Header.Set("Range", fmt.Sprintf("bytes=-%d", r.Suffix))
			case r.End >= 0:
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r.Start, r.End))
			default:
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-", r.Start))
			}
		}
		return req, nil
	})
	if err != nil {
		return nil, err
	}
	h := resp.Header
	inf := Info{Key: key, ETag: h.Get("ETag"), ContentType: h.Get("Content-Type")}
	if t, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
		inf.LastModified = t.UTC()
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
	case http.StatusNotModified, http.StatusRequestedRangeNotSatisfiable:
		if _, _, total, ok := parseContentRange(h.Get("Content-Range")); ok {
			inf.Size = total
		}
		return &Object{Info: inf}, statusErr("get", resp)
	default:
		return nil, statusErr("get", resp)
	}
	inf.Size = resp.ContentLength
	obj := &Object{Info: inf, Body: resp.Body}
	if cr := h.Get("Content-Range"); resp.StatusCode == http.StatusPartialContent && cr != "" {
		first, last, total, ok := parseContentRange(cr)
		if !ok {
			resp.Body.Close()
			return nil, &UnavailableError{Op: "get", Err: fmt.Errorf("store sent Content-Range %q", cr)}
		}
		obj.Partial, obj.First, obj.Last, obj.Size = true, first, last, total
	}
	return obj, nil
}

// Put writes a small object in one request (see S3.Put).
func (f *fastS3) Put(ctx context.Context, key string, body []byte, ct string, opt PutOptions) (string, error) {
	resp, err := f.do(ctx, func() (*http.Request, error) {
		req, err := f.request(ctx, http.MethodPut, key, body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", ct)
		if opt.IfMatch != "" {
			req.Header.Set("If-Match", opt.IfMatch)
		}
		if opt.IfNoneMatch != "" {
			req.Header.Set("If-None-Match", opt.IfNoneMatch)
		}
		return req, nil
	})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		err := statusErr("put", resp)
		if errors.Is(err, ErrNotFound) && opt.IfMatch != "" {
			return "", ErrPrecondition // If-Match on a missing key
		}
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // keep the connection reusable
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if etag == "" {
		return "", &UnavailableError{Op: "put", Err: errors.New("S3 answered without an ETag")}
	}
	return etag, nil
}
