package files

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/quantapix/hqd/internal/s3lite"
)

// fastS3 serves the hot operations — GET and small PUTs — through
// s3lite's signed requests, without the SDK's middleware stack (see
// docs/BENCHMARKS.md, P1). Everything else, and every case it does not
// cover, goes through the SDK. Both are checked by the same conformance
// suite against MinIO.
type fastS3 struct {
	c *s3lite.Client
}

func newFastS3(cfg S3Config, creds aws.CredentialsProvider, client *http.Client) (*fastS3, error) {
	c, err := s3lite.New(cfg.Endpoint, cfg.PathStyle, cfg.Bucket, cfg.Region, creds, client)
	if err != nil {
		return nil, err
	}
	return &fastS3{c: c}, nil
}

// do sends the request build makes (see s3lite.Client.Do).
func (f *fastS3) do(ctx context.Context, build func() (*http.Request, error)) (*http.Response, error) {
	resp, err := f.c.Do(ctx, build)
	var ce *s3lite.CredentialsError
	switch {
	case err == nil:
		return resp, nil
	case errors.As(err, &ce):
		return nil, &UnavailableError{Op: "credentials", Temporary: true, Err: ce.Err}
	}
	return nil, &UnavailableError{Op: "request", Temporary: true, Err: err}
}

// statusErr translates an S3 error answer into the package's outcomes.
func statusErr(op string, resp *http.Response) error {
	code := s3lite.Code(resp)
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
		req, err := f.c.Request(ctx, http.MethodGet, key, nil)
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
		req, err := f.c.Request(ctx, http.MethodPut, key, body)
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
	s3lite.Drain(resp)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		return "", &UnavailableError{Op: "put", Err: errors.New("S3 answered without an ETag")}
	}
	return etag, nil
}
