// Package s3lite sends S3's hot requests — GET, and PUT of a body held in
// memory — as plain SigV4-signed HTTP requests over a shared connection
// pool, without the SDK's middleware stack, which costs more CPU per small
// object than the object itself (docs/BENCHMARKS.md, P1 and P11). hqd's s3
// store and hq --direct both use it; everything else goes through the SDK.
package s3lite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// Client signs and sends requests for one bucket's objects.
type Client struct {
	base      *url.URL // scheme and host of the endpoint
	pathStyle bool
	bucket    string
	region    string
	creds     aws.CredentialsProvider
	signer    *v4.Signer
	http      *http.Client
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// New is a client of bucket at endpoint (AWS's regional endpoint when
// empty), with path-style URLs when pathStyle is set or the bucket's name
// has a dot (which breaks virtual-host TLS names).
func New(endpoint string, pathStyle bool, bucket, region string, creds aws.CredentialsProvider, hc *http.Client) (*Client, error) {
	if endpoint == "" {
		endpoint = "https://s3." + region + ".amazonaws.com"
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("S3 endpoint %q: not a URL", endpoint)
	}
	if strings.Contains(bucket, ".") {
		pathStyle = true
	}
	return &Client{base: u, pathStyle: pathStyle, bucket: bucket, region: region, creds: creds,
		signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }), http: hc}, nil
}

// Request builds an unsigned request for key; body is the whole payload
// (nil for none), hashed for the signature.
func (c *Client) Request(ctx context.Context, method, key string, body []byte) (*http.Request, error) {
	escaped := httpbinding.EscapePath(key, false)
	u := *c.base
	if c.pathStyle {
		u.Path = strings.TrimSuffix(c.base.Path, "/") + "/" + c.bucket + "/" + key
		u.RawPath = strings.TrimSuffix(c.base.EscapedPath(), "/") + "/" + c.bucket + "/" + escaped
	} else {
		u.Host = c.bucket + "." + u.Host
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

// CredentialsError is a failure to get credentials to sign with.
type CredentialsError struct{ Err error }

func (e *CredentialsError) Error() string { return "S3 credentials: " + e.Err.Error() }
func (e *CredentialsError) Unwrap() error { return e.Err }

// Do signs and sends the request build makes, once more on a broken
// connection (callers send only idempotent requests: a GET, or a PUT of a
// whole object). Errors are a *CredentialsError or the transport's.
func (c *Client) Do(ctx context.Context, build func() (*http.Request, error)) (*http.Response, error) {
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		req, err := build()
		if err != nil {
			return nil, err
		}
		cr, err := c.creds.Retrieve(ctx)
		if err != nil {
			return nil, &CredentialsError{err}
		}
		if err := c.signer.SignHTTP(ctx, cr, req, req.Header.Get("X-Amz-Content-Sha256"), "s3", c.region, time.Now().UTC()); err != nil {
			return nil, err
		}
		resp, err := c.http.Do(req)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// Code reads an error answer's S3 error code (empty when it has none) and
// closes its body.
func Code(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if i := bytes.Index(body, []byte("<Code>")); i >= 0 {
		if j := bytes.Index(body[i:], []byte("</Code>")); j > 0 {
			return string(body[i+6 : i+j])
		}
	}
	return ""
}

// Drain reads what is left of a successful answer and closes it, so that
// its connection is reused.
func Drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
