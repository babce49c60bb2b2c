// Package files serves a user's HQ files (SPEC §4): the four /api/files
// routes and the two stores behind them, s3 (AWS, MinIO, LocalStack) and dir
// (a local directory, for `hqd dev`). Every key a handler builds starts with
// the verified user's prefix users/{sub}/hq/; the stores know nothing of
// users and take full keys.
package files

import (
	"context"
	"errors"
	"io"
	"time"
)

// Outcomes callers branch on. Stores translate their backend's errors into
// these, so handlers never see SDK types.
var (
	ErrNotFound     = errors.New("no such file")
	ErrPrecondition = errors.New("precondition failed")
	ErrNotModified  = errors.New("not modified")
	ErrBadRange     = errors.New("range not satisfiable")
	ErrConflict     = errors.New("path conflicts with an existing file or folder")
	// ErrFull: the store has no room for the write (a full disk or quota);
	// nothing was changed.
	ErrFull     = errors.New("the store is full")
	ErrBadToken = errors.New("continuation token not valid for this listing")
	// ErrExists: a copy or move found a file at its destination and was
	// not told to overwrite it; nothing was changed.
	ErrExists = errors.New("the destination exists")
)

// UnavailableError is a store that could not be reached or failed; the
// handler answers 502 or 503 with Retry-After.
type UnavailableError struct {
	Op        string
	Temporary bool // 503 when true (unreachable, throttled, 5xx), else 502
	Err       error
}

func (e *UnavailableError) Error() string { return "store " + e.Op + ": " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// TestHookAfterCopy, when set, runs inside a move at the point where the
// destination is complete and the source not yet removed (for the s3
// store, between CopyObject and DeleteObject). Only crash tests set it:
// the process is killed there and restarted.
var TestHookAfterCopy func()

// Info describes a stored file.
type Info struct {
	Key          string // full key
	Size         int64
	ETag         string // quoted, as HTTP sends it
	LastModified time.Time
	ContentType  string
}

// Range is one byte range of a read, as parsed from a Range header.
// Suffix > 0 means the last Suffix bytes; otherwise Start to End inclusive,
// End < 0 meaning to the end.
type Range struct {
	Start, End, Suffix int64
}

// Object is an open file. The caller closes Body.
type Object struct {
	Info
	Body io.ReadCloser
	// Partial is set when a Range was served: bytes First..Last of Info.Size.
	Partial     bool
	First, Last int64
}

// GetOptions are the conditions of a read.
type GetOptions struct {
	Range       *Range
	IfNoneMatch string // raw header value; a match answers ErrNotModified
}

// PutOptions are the conditions and metadata of a write.
type PutOptions struct {
	ContentType string
	Size        int64  // -1 when unknown
	IfMatch     string // write only over this ETag
	IfNoneMatch string // "*": write only if there is no file
}

// CopyOptions are the conditions of a server-side copy or move.
type CopyOptions struct {
	IfMatch   string // the source must have this ETag (ErrPrecondition)
	Overwrite bool   // replace a file at the destination instead of ErrExists
}

// ListOptions select one page of a listing.
type ListOptions struct {
	Prefix    string // full key prefix
	Delimiter string // "" or "/"
	Token     string // the store's own continuation token, "" for the first page
	Limit     int    // 1–100
}

// ListPage is one page: files and folders (full keys) in key order.
type ListPage struct {
	Files   []Info
	Folders []string
	Next    string // "" on the last page
}

// Store keeps files by full key. Implementations are safe for concurrent
// use, never leave a partial file behind, and give a write that returned
// successfully to every later read.
type Store interface {
	// Get opens a file. ErrNotFound, ErrNotModified and ErrBadRange
	// (with the size in the returned Info) are answers, not failures.
	Get(ctx context.Context, key string, opt GetOptions) (*Object, error)
	// Put writes body as the file, all or nothing; ErrPrecondition when a
	// condition fails, ErrConflict where the store cannot hold the key.
	Put(ctx context.Context, key string, body io.Reader, opt PutOptions) (Info, error)
	// Delete removes a file; a missing file is not an error unless ifMatch
	// is set, which answers ErrPrecondition unless the file has that ETag.
	Delete(ctx context.Context, key, ifMatch string) error
	// Copy makes dst a byte-exact copy of src inside the store, keeping its
	// content type. ErrNotFound without src (ErrPrecondition with
	// IfMatch), ErrExists when dst exists and Overwrite is not set.
	Copy(ctx context.Context, src, dst string, opt CopyOptions) (Info, error)
	// Move is Copy and then the removal of src, as one step: any refusal
	// or failure leaves both files as they were, and a crash never leaves
	// both or neither for longer than it takes the store to recover.
	Move(ctx context.Context, src, dst string, opt CopyOptions) (Info, error)
	// List returns one page in key order.
	List(ctx context.Context, opt ListOptions) (ListPage, error)
	// Ping tells whether the store is reachable.
	Ping(ctx context.Context) error
}
