package files

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/quantapix/hqd/internal/atomicfile"
)

// S3 has no rename: a move is CopyObject and then DeleteObject. Between
// the two both files exist, and a crash there would leave them both for
// good. So every move is written to a journal (one small file per move in
// S3Config.Journal, on hqd's disk) before the copy, and the copy carries
// the move's id in its metadata. Whoever finds an entry later — the same
// process after a failed delete, or hqd after a restart — finishes the
// move if the destination carries that id (the copy happened) and drops
// the entry otherwise (it did not; the source is untouched).
const moveMeta = "hqd-move"

// Past copyLimit a copy goes part by part (UploadPartCopy): S3's
// CopyObject stops at 5 GiB. Variables so that tests can reach them.
var (
	copyLimit int64 = 5 << 30
	copyPart  int64 = 512 << 20
)

// moveEntry is one journalled move.
type moveEntry struct {
	ID   string `json:"id"`
	Src  string `json:"src"`
	Dst  string `json:"dst"`
	ETag string `json:"etag"` // the source's version that is copied
}

// journal keeps the moves in flight; see moveMeta.
type journal struct {
	dir    string
	mu     sync.Mutex
	active map[string]bool // moves this process is doing right now
}

func newJournal(dir string) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("move journal: %w", err)
	}
	return &journal{dir: dir, active: map[string]bool{}}, nil
}

// add records a move durably before it starts.
func (j *journal) add(src, dst, etag string) (moveEntry, error) {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	e := moveEntry{ID: hex.EncodeToString(b[:]), Src: src, Dst: dst, ETag: etag}
	// Marked as this process's before the file exists: FinishMoves must
	// never take an entry whose copy may still be on its way.
	j.mu.Lock()
	j.active[e.ID] = true
	j.mu.Unlock()
	data, _ := json.Marshal(e) // a plain struct always marshals
	if err := atomicfile.Write(filepath.Join(j.dir, e.ID+".json"), data); err != nil {
		j.done(e.ID)
		return moveEntry{}, &UnavailableError{Op: "move", Temporary: true, Err: fmt.Errorf("move journal: %w", err)}
	}
	return e, nil
}

// done forgets a move that is finished or never happened.
func (j *journal) done(id string) {
	_ = os.Remove(filepath.Join(j.dir, id+".json")) // a leftover entry is finished again, harmlessly
	j.mu.Lock()
	delete(j.active, id)
	j.mu.Unlock()
}

// release lets FinishMoves take an entry this process could not finish.
func (j *journal) release(id string) {
	j.mu.Lock()
	delete(j.active, id)
	j.mu.Unlock()
}

// pending lists the entries no move of this process is working on.
func (j *journal) pending() ([]moveEntry, error) {
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, err
	}
	var out []moveEntry
	for _, de := range ents {
		name := de.Name()
		if !strings.HasSuffix(name, ".json") {
			continue // atomicfile's temp files
		}
		b, err := os.ReadFile(filepath.Join(j.dir, name))
		var e moveEntry
		if err != nil || json.Unmarshal(b, &e) != nil || e.ID+".json" != name {
			continue // not an entry of add's
		}
		j.mu.Lock()
		busy := j.active[e.ID]
		j.mu.Unlock()
		if !busy {
			out = append(out, e)
		}
	}
	return out, nil
}

// head describes the object at key with its user metadata.
func (s *S3) head(ctx context.Context, key string) (Info, map[string]string, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err := s3Err("head", err); err != nil {
		return Info{}, nil, err
	}
	return Info{Key: key, Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified).UTC(), ContentType: aws.ToString(out.ContentType)}, out.Metadata, nil
}

// source finds the version of src a copy will take, checking If-Match.
func (s *S3) source(ctx context.Context, src, ifMatch string) (Info, error) {
	inf, _, err := s.head(ctx, src)
	if errors.Is(err, ErrNotFound) && ifMatch != "" {
		return Info{}, ErrPrecondition
	}
	if err != nil {
		return Info{}, err
	}
	if ifMatch != "" && !matchETag(ifMatch, inf.ETag) {
		return Info{}, ErrPrecondition
	}
	return inf, nil
}

// vacant answers ErrExists when dst holds a file and may not be replaced.
func (s *S3) vacant(ctx context.Context, dst string, overwrite bool) error {
	if overwrite {
		return nil
	}
	_, _, err := s.head(ctx, dst)
	switch {
	case err == nil:
		return ErrExists
	case errors.Is(err, ErrNotFound):
		return nil
	}
	return err
}

// Copy copies src to dst inside the bucket.
func (s *S3) Copy(ctx context.Context, src, dst string, opt CopyOptions) (Info, error) {
	from, err := s.source(ctx, src, opt.IfMatch)
	if err != nil {
		return Info{}, err
	}
	if err := s.vacant(ctx, dst, opt.Overwrite); err != nil {
		return Info{}, err
	}
	return s.copy(ctx, from, dst, opt.Overwrite, "")
}

// Move copies src to dst and deletes src if it is still the version
// copied; see moveMeta for what makes it whole across a crash.
func (s *S3) Move(ctx context.Context, src, dst string, opt CopyOptions) (Info, error) {
	from, err := s.source(ctx, src, opt.IfMatch)
	if err != nil {
		return Info{}, err
	}
	if err := s.vacant(ctx, dst, opt.Overwrite); err != nil {
		return Info{}, err
	}
	e, err := s.journal.add(src, dst, from.ETag)
	if err != nil {
		return Info{}, err
	}
	// From the journal entry on, a client that goes away does not stop the
	// move half way.
	ctx = context.WithoutCancel(ctx)
	inf, err := s.copy(ctx, from, dst, opt.Overwrite, e.ID)
	if err != nil {
		if errors.Is(err, ErrPrecondition) || errors.Is(err, ErrExists) {
			s.journal.done(e.ID) // refused: nothing was copied
		} else {
			// A timeout or a 5xx may come after S3 made the copy: FinishMoves
			// looks for the move's id on the destination and settles it.
			s.journal.release(e.ID)
		}
		return Info{}, err
	}
	if TestHookAfterCopy != nil {
		TestHookAfterCopy()
	}
	switch err := s.Delete(ctx, src, from.ETag); {
	case err == nil:
		s.journal.done(e.ID)
		return inf, nil
	case errors.Is(err, ErrPrecondition):
		// The source was changed or removed after it was copied. Without
		// overwrite the copy is taken back, which leaves things as they
		// were; with it, the destination's earlier version is already
		// gone, and the copy (what the user asked to put there) stays.
		if !opt.Overwrite {
			if derr := s.Delete(ctx, dst, inf.ETag); derr != nil && !errors.Is(derr, ErrPrecondition) {
				s.journal.release(e.ID) // FinishMoves will see the copy and retry the source's delete
				return Info{}, derr
			}
		}
		s.journal.done(e.ID)
		return Info{}, ErrPrecondition
	default:
		// The copy is there and the source could not be deleted yet: the
		// entry stays, and FinishMoves deletes the source when S3 answers.
		s.journal.release(e.ID)
		return inf, nil
	}
}

// copy writes object from as dst; id, when set, marks the copy as that
// move's (see moveMeta).
func (s *S3) copy(ctx context.Context, from Info, dst string, overwrite bool, id string) (Info, error) {
	ct := movedType(from.Key, dst, from.ContentType)
	meta := map[string]string{}
	if id != "" {
		meta[moveMeta] = id
	}
	if from.Size > copyLimit {
		return s.copyParts(ctx, from, dst, ct, meta, overwrite)
	}
	in := &s3.CopyObjectInput{
		Bucket: &s.bucket, Key: &dst, CopySource: aws.String(copySource(s.bucket, from.Key)),
		CopySourceIfMatch: aws.String(from.ETag), MetadataDirective: types.MetadataDirectiveReplace,
		ContentType: &ct, Metadata: meta,
	}
	if !overwrite {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := s.client.CopyObject(ctx, in)
	if err != nil {
		return Info{}, s.copyErr(ctx, err, from)
	}
	inf := Info{Key: dst, Size: from.Size, ContentType: ct}
	if r := out.CopyObjectResult; r != nil {
		inf.ETag, inf.LastModified = aws.ToString(r.ETag), aws.ToTime(r.LastModified).UTC()
	}
	if inf.ETag == "" {
		return Info{}, &UnavailableError{Op: "copy", Err: errors.New("S3 answered a copy without an ETag")}
	}
	return inf, nil
}

// copyErr tells the two failed conditions of a copy apart: the source's
// version (ErrPrecondition) and an existing destination (ErrExists).
func (s *S3) copyErr(ctx context.Context, err error, from Info) error {
	err = s3Err("copy", err)
	if errors.Is(err, ErrNotFound) {
		return ErrPrecondition // the source went away after it was looked at
	}
	if !errors.Is(err, ErrPrecondition) {
		return err
	}
	now, _, herr := s.head(ctx, from.Key)
	if herr == nil && now.ETag == from.ETag {
		return ErrExists
	}
	return ErrPrecondition
}

// copyParts copies an object over 5 GiB part by part, every part under
// the source's ETag; the destination appears only when all are copied.
func (s *S3) copyParts(ctx context.Context, from Info, dst, ct string, meta map[string]string, overwrite bool) (Info, error) {
	up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &dst, ContentType: &ct, Metadata: meta})
	if err != nil {
		return Info{}, s3Err("copy", err)
	}
	abort := func() {
		_, _ = s.client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &dst, UploadId: up.UploadId})
	}
	part := max(copyPart, (from.Size+9999)/10000) // S3 takes at most 10,000 parts
	var parts []types.CompletedPart
	for n, off := int32(1), int64(0); off < from.Size; n, off = n+1, off+part {
		end := min(off+part, from.Size) - 1
		out, err := s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: &s.bucket, Key: &dst, UploadId: up.UploadId, PartNumber: aws.Int32(n),
			CopySource: aws.String(copySource(s.bucket, from.Key)), CopySourceIfMatch: aws.String(from.ETag),
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
		})
		if err != nil {
			abort()
			return Info{}, s.copyErr(ctx, err, from)
		}
		parts = append(parts, types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(n)})
	}
	in := &s3.CompleteMultipartUploadInput{Bucket: &s.bucket, Key: &dst, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
	if !overwrite {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := s.client.CompleteMultipartUpload(ctx, in)
	if err != nil {
		abort()
		return Info{}, s.copyErr(ctx, err, from)
	}
	return Info{Key: dst, Size: from.Size, ETag: aws.ToString(out.ETag), ContentType: ct}, nil
}

// copySource is CopyObject's x-amz-copy-source: bucket/key, URL-encoded.
func copySource(bucket, key string) string {
	return url.PathEscape(bucket) + "/" + strings.ReplaceAll(url.PathEscape(key), "%2F", "/")
}

// MoveOutcome is what FinishMoves did with one journalled move.
type MoveOutcome struct {
	Src, Dst string
	Done     string // "finished", "source changed" (both kept), "not copied", or "" (still pending)
	Err      error
}

// FinishMoves settles the moves that a crash or an unreachable S3 left
// half done: where the destination carries the move's copy, the source is
// deleted (if it is still the version copied); otherwise the copy never
// happened and the entry is dropped. Entries S3 could not be asked about
// stay for the next call. hqd calls it at start and then every minute.
func (s *S3) FinishMoves(ctx context.Context) ([]MoveOutcome, error) {
	entries, err := s.journal.pending()
	if err != nil {
		return nil, fmt.Errorf("move journal: %w", err)
	}
	var out []MoveOutcome
	for _, e := range entries {
		o := MoveOutcome{Src: e.Src, Dst: e.Dst}
		_, meta, err := s.head(ctx, e.Dst)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && meta[moveMeta] != e.ID):
			o.Done = "not copied"
		case err != nil:
			o.Err = err
		default:
			switch err := s.Delete(ctx, e.Src, e.ETag); {
			case err == nil:
				o.Done = "finished"
			case errors.Is(err, ErrPrecondition):
				o.Done = "source changed"
			default:
				o.Err = err
			}
		}
		if o.Done != "" {
			s.journal.done(e.ID)
		}
		out = append(out, o)
	}
	return out, nil
}
