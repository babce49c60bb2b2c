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
)

// direct is the user's HQ root reached straight on S3 with the STS
// credentials hqd's refresh route hands out (the seed's design: bytes do
// not pass through the daemon). The credentials allow the user's prefix
// only; hqd's rules still hold because S3 enforces the session policy.
type direct struct {
	s      *sessions
	client *s3.Client
	bucket string
	prefix string // users/{sub}/hq/
}

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
	opts := s3.Options{
		Region:      sess.Region,
		Credentials: creds,
		HTTPClient:  newHTTPClient(conns),
		// Checksums only where S3 requires them (as hqd's store): ETags
		// already carry the bytes' MD5, which sync compares.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if endpoint != "" {
		opts.BaseEndpoint = aws.String(endpoint)
		opts.UsePathStyle = true
	}
	return &direct{s: s, client: s3.New(opts), bucket: sess.Bucket, prefix: sess.Prefix}, nil
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
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: aws.String(d.prefix + path)})
	if err != nil {
		return remoteFile{}, s3Error(err)
	}
	defer out.Body.Close()
	n, err := io.Copy(w, out.Body)
	if err != nil {
		return remoteFile{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if out.ContentLength != nil && n != *out.ContentLength {
		return remoteFile{}, fmt.Errorf("reading %s: got %d of %d bytes", path, n, *out.ContentLength)
	}
	return remoteFile{Path: path, Size: n, ETag: aws.ToString(out.ETag)}, nil
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
	key := d.prefix + path
	in := &s3.DeleteObjectInput{Bucket: &d.bucket, Key: &key}
	if ifMatch != "" {
		if _, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &key, IfMatch: &ifMatch}); err != nil {
			if err = s3Error(err); errors.Is(err, errNotFound) {
				return fmt.Errorf("%w: gone", errPrecondition) // as hqd answers If-Match on a missing file
			}
			return err
		}
		in.IfMatch = &ifMatch
	}
	if _, err := d.client.DeleteObject(ctx, in); err != nil {
		return s3Error(err)
	}
	return nil
}
