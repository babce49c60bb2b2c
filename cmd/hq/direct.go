package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/quantapix/hqd/internal/hqpath"
	"github.com/quantapix/hqd/internal/s3lite"
)

// direct is the user's HQ root reached straight on S3 with the STS
// credentials hqd's refresh route hands out (the seed's design: bytes do
// not pass through the daemon). The credentials allow the user's prefix
// only; hqd's rules still hold because S3 enforces the session policy.
type direct struct {
	s      *sessions
	client *s3.Client     // listings, large and multipart uploads
	lite   *s3lite.Client // GET, HEAD, DELETE and small PUTs: a fraction of the SDK's CPU per request
	bucket string
	prefix string // users/{sub}/hq/
}

// litePut is the largest file sent by s3lite, which holds the body in
// memory to sign it; larger ones stream through the SDK.
const litePut = 1 << 20

// newDirect builds the S3 client. endpoint is empty for AWS; set, it names
// an S3-compatible server (MinIO) reached with path-style URLs.
func newDirect(ctx context.Context, s *sessions, endpoint string, conns int) (*direct, error) {
	sess, err := s.fresh(ctx, true)
	if err != nil {
		return nil, err
	}
	if sess.Bucket == "" || sess.Prefix == "" {
		return nil, errors.New("hqd named no bucket for --direct")
	}
	creds := aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		sess, err := s.fresh(ctx, true)
		if err != nil {
			return aws.Credentials{}, err
		}
		c := sess.Credentials
		return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
			CanExpire: true, Expires: c.Expiration.Add(-refreshMargin), Source: "hqd"}, nil
	}))
	hc := newHTTPClient(conns)
	opts := s3.Options{
		Region:      sess.Region,
		Credentials: creds,
		HTTPClient:  hc,
		// Checksums only where S3 requires them (as hqd's store): ETags
		// already carry the bytes' MD5, which sync compares.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if endpoint != "" {
		opts.BaseEndpoint = aws.String(endpoint)
		opts.UsePathStyle = true
	}
	lite, err := s3lite.New(endpoint, endpoint != "", sess.Bucket, sess.Region, creds, hc)
	if err != nil {
		return nil, err
	}
	return &direct{s: s, client: s3.New(opts), lite: lite, bucket: sess.Bucket, prefix: sess.Prefix}, nil
}

// liteDo sends an s3lite request for path's key and maps S3's refusals.
func (d *direct) liteDo(ctx context.Context, method, path string, body []byte, hdr ...string) (*http.Response, error) {
	resp, err := d.lite.Do(ctx, func() (*http.Request, error) {
		req, err := d.lite.Request(ctx, method, d.prefix+path, body)
		for i := 0; err == nil && i+1 < len(hdr); i += 2 {
			if hdr[i+1] != "" {
				req.Header.Set(hdr[i], hdr[i+1])
			}
		}
		return req, err
	})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	code := s3lite.Code(resp)
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w (S3 %s)", errNotFound, code)
	case http.StatusPreconditionFailed, http.StatusConflict:
		return nil, fmt.Errorf("%w (S3 %s)", errPrecondition, code)
	}
	return nil, fmt.Errorf("S3 answered %d %s to %s %s", resp.StatusCode, code, method, path)
}

// s3Error maps S3's answers to the errors sync acts on.
func s3Error(err error) error {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return fmt.Errorf("%w (%v)", errNotFound, err)
		case http.StatusPreconditionFailed, http.StatusConflict:
			// 409: S3's answer to a conditional write racing another.
			return fmt.Errorf("%w (%v)", errPrecondition, err)
		}
	}
	return err
}

func (d *direct) list(ctx context.Context) ([]remoteFile, error) {
	var all []remoteFile
	p := s3.NewListObjectsV2Paginator(d.client, &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &d.prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing s3://%s/%s: %w", d.bucket, d.prefix, s3Error(err))
		}
		for _, o := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), d.prefix)
			lm := ""
			if o.LastModified != nil {
				lm = o.LastModified.UTC().Format(time.RFC3339)
			}
			all = append(all, remoteFile{Path: rel, Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag), LastModified: lm})
		}
	}
	return all, nil
}

func (d *direct) get(ctx context.Context, path string, w io.Writer) (remoteFile, error) {
	resp, err := d.liteDo(ctx, http.MethodGet, path, nil)
	if err != nil {
		return remoteFile{}, err
	}
	return copyBody(path, resp, w)
}

func (d *direct) put(ctx context.Context, path, name string, cond putCond, progress func(int64)) (remoteFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return remoteFile{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return remoteFile{}, err
	}
	key, ct := d.prefix+path, hqpath.GuessType(path)
	if st.Size() <= litePut {
		body := make([]byte, st.Size())
		if _, err := io.ReadFull(f, body); err != nil {
			return remoteFile{}, err
		}
		noneMatch := ""
		if cond.create {
			noneMatch = "*"
		}
		resp, err := d.liteDo(ctx, http.MethodPut, path, body, "Content-Type", ct, "If-Match", cond.ifMatch, "If-None-Match", noneMatch)
		if err != nil {
			return remoteFile{}, err
		}
		s3lite.Drain(resp)
		if progress != nil {
			progress(st.Size())
		}
		return remoteFile{Path: path, Size: st.Size(), ETag: resp.Header.Get("ETag")}, nil
	}
	var ifMatch, ifNoneMatch *string
	if cond.ifMatch != "" {
		ifMatch = aws.String(cond.ifMatch)
	}
	if cond.create {
		ifNoneMatch = aws.String("*")
	}
	if st.Size() <= partSize {
		out, err := d.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &d.bucket, Key: &key, Body: f, ContentLength: aws.Int64(st.Size()),
			ContentType: &ct, IfMatch: ifMatch, IfNoneMatch: ifNoneMatch})
		if err != nil {
			return remoteFile{}, s3Error(err)
		}
		if progress != nil {
			progress(st.Size())
		}
		return remoteFile{Path: path, Size: st.Size(), ETag: aws.ToString(out.ETag)}, nil
	}
	return d.putMultipart(ctx, path, key, ct, f, st.Size(), ifMatch, ifNoneMatch, progress)
}

// putMultipart uploads a large file in partSize parts, one after the
// other (sync already runs --jobs files at once); the condition is checked
// when the parts are joined, so a lost race leaves the object untouched.
func (d *direct) putMultipart(ctx context.Context, path, key, ct string, f *os.File, size int64, ifMatch, ifNoneMatch *string, progress func(int64)) (remoteFile, error) {
	up, err := d.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &d.bucket, Key: &key, ContentType: &ct})
	if err != nil {
		return remoteFile{}, s3Error(err)
	}
	abort := func() {
		// The session policy may not allow it; the bucket's lifecycle rule
		// removes incomplete uploads in any case.
		_, _ = d.client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &d.bucket, Key: &key, UploadId: up.UploadId})
	}
	var parts []types.CompletedPart
	for off, num := int64(0), int32(1); off < size; off, num = off+partSize, num+1 {
		n := min(partSize, size-off)
		out, err := d.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &d.bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(num), Body: io.NewSectionReader(f, off, n), ContentLength: aws.Int64(n)})
		if err != nil {
			abort()
			return remoteFile{}, s3Error(err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		if progress != nil {
			progress(n)
		}
	}
	out, err := d.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &d.bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}, IfMatch: ifMatch, IfNoneMatch: ifNoneMatch})
	if err != nil {
		abort()
		return remoteFile{}, s3Error(err)
	}
	return remoteFile{Path: path, Size: size, ETag: aws.ToString(out.ETag)}, nil
}

// remove deletes path if it is still version ifMatch. S3 checks If-Match
// on DeleteObject; MinIO ignores it, so the version is checked with a HEAD
// first (one round trip's window on MinIO, none on S3).
func (d *direct) remove(ctx context.Context, path, ifMatch string) error {
	if ifMatch != "" {
		resp, err := d.liteDo(ctx, http.MethodHead, path, nil, "If-Match", ifMatch)
		if errors.Is(err, errNotFound) {
			return fmt.Errorf("%w: gone", errPrecondition) // as hqd answers If-Match on a missing file
		}
		if err != nil {
			return err
		}
		s3lite.Drain(resp)
	}
	resp, err := d.liteDo(ctx, http.MethodDelete, path, nil, "If-Match", ifMatch)
	if err != nil {
		return err
	}
	s3lite.Drain(resp)
	return nil
}
