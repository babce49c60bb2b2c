package files

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/quantapix/hqd/internal/hqpath"
)

// Dir is the store of `hqd dev`: files lie under Root as ordinary files a
// person can open (Root/users/{sub}/hq/...). It keeps S3's semantics:
// byte-order listing, MD5 ETags, conditional writes, and writes that are all
// or nothing (temp file, fsync, rename). Where S3 could hold both "a" and
// "a/b" a directory cannot; such a write answers ErrConflict.
//
// ETag and content type are kept in an extended attribute of the file; a
// file changed by hand (or on a file system without user xattrs) gets its
// ETag recomputed from its bytes.
type Dir struct {
	root  string
	tmp   string
	locks [64]sync.Mutex
	seed  maphash.Seed
}

const metaXattr = "user.hqd.meta"

// copyBuffers saves a 32 KiB allocation per write.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

type dirMeta struct {
	ETag        string `json:"etag"`
	ContentType string `json:"ct,omitempty"`
	Size        int64  `json:"size"`
	MTime       int64  `json:"mtime"`
}

// NewDir opens (creating) a directory store at root.
func NewDir(root string) (*Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("dir store %s: %w", root, err)
	}
	d := &Dir{root: abs, tmp: filepath.Join(abs, ".tmp"), seed: maphash.MakeSeed()}
	if err := os.MkdirAll(d.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("dir store %s: %w", root, err)
	}
	// Temp files left by a crash are never part of any file.
	if ents, err := os.ReadDir(d.tmp); err == nil {
		for _, e := range ents {
			_ = os.Remove(filepath.Join(d.tmp, e.Name())) // best effort
		}
	}
	return d, nil
}

// Root is the directory the store keeps its files in.
func (d *Dir) Root() string { return d.root }

func (d *Dir) lock(key string) *sync.Mutex {
	return &d.locks[maphash.String(d.seed, key)%uint64(len(d.locks))]
}

// file maps a key to its file. Keys are validated by the handler; the check
// here is a second wall, not the first.
func (d *Dir) file(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasPrefix(key, ".tmp") || slices.Contains(strings.Split(key, "/"), "..") {
		return "", fmt.Errorf("dir store: refusing key %q", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Ping checks that the root is still there and writable.
func (d *Dir) Ping(ctx context.Context) error {
	if err := unix.Access(d.tmp, unix.W_OK); err != nil {
		return &UnavailableError{Op: "ping", Temporary: true, Err: err}
	}
	return nil
}

// info describes the regular file at name with stat st, computing and
// recording its ETag when the recorded one is missing or stale.
func (d *Dir) info(key, name string, st os.FileInfo) (Info, error) {
	mtime := st.ModTime().UnixNano()
	meta, _ := readMeta(name) // a missing or damaged record is recomputed below
	if meta.ETag == "" || meta.Size != st.Size() || meta.MTime != mtime {
		f, err := os.Open(name)
		if err != nil {
			return Info{}, err
		}
		h := md5.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return Info{}, err
		}
		meta = dirMeta{ETag: `"` + hex.EncodeToString(h.Sum(nil)) + `"`, ContentType: meta.ContentType, Size: st.Size(), MTime: mtime}
		if b, err := json.Marshal(meta); err == nil {
			_ = unix.Setxattr(name, metaXattr, b, 0) // without xattrs we recompute next time
		}
	}
	ct := meta.ContentType
	if ct == "" {
		ct = hqpath.GuessType(key)
	}
	return Info{Key: key, Size: st.Size(), ETag: meta.ETag, LastModified: st.ModTime().UTC().Truncate(time.Second), ContentType: ct}, nil
}

// stat returns the file's Info, or ErrNotFound when there is no regular file.
func (d *Dir) stat(key string) (Info, error) {
	name, err := d.file(key)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(name)
	if err != nil || !st.Mode().IsRegular() {
		if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return Info{}, ErrNotFound
		}
		return Info{}, &UnavailableError{Op: "stat", Temporary: true, Err: err}
	}
	return d.info(key, name, st)
}

// Get opens the file at key.
func (d *Dir) Get(ctx context.Context, key string, opt GetOptions) (*Object, error) {
	name, err := d.file(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, ErrNotFound
		}
		return nil, &UnavailableError{Op: "get", Temporary: true, Err: err}
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		f.Close()
		return nil, ErrNotFound
	}
	var inf Info
	if err == nil {
		inf, err = d.info(key, name, st)
	}
	if err != nil {
		f.Close()
		return nil, &UnavailableError{Op: "get", Temporary: true, Err: err}
	}
	if opt.IfNoneMatch != "" && matchETag(opt.IfNoneMatch, inf.ETag) {
		f.Close()
		return &Object{Info: inf}, ErrNotModified
	}
	obj := &Object{Info: inf, Body: f}
	if opt.Range != nil {
		first, last, ok := resolveRange(*opt.Range, inf.Size)
		if !ok {
			f.Close()
			return &Object{Info: inf}, ErrBadRange
		}
		if _, err := f.Seek(first, io.SeekStart); err != nil {
			f.Close()
			return nil, &UnavailableError{Op: "get", Temporary: true, Err: err}
		}
		obj.Partial, obj.First, obj.Last = true, first, last
		obj.Body = readCloser{io.LimitReader(f, last-first+1), f}
	}
	return obj, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// resolveRange applies r to a file of size bytes (RFC 9110 §14.1.2).
func resolveRange(r Range, size int64) (first, last int64, ok bool) {
	if r.Suffix > 0 {
		if size == 0 {
			return 0, 0, false
		}
		return max(0, size-r.Suffix), size - 1, true
	}
	if r.Start >= size {
		return 0, 0, false
	}
	last = size - 1
	if r.End >= 0 && r.End < last {
		last = r.End
	}
	return r.Start, last, true
}

// putError names a failed write of the temp file: a full disk is ErrFull
// (the old file is untouched, only the temp file is lost); anything else
// is the body's or the disk's trouble.
func putError(key string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("writing %s: %w (%w)", key, ErrFull, err)
	}
	return fmt.Errorf("writing %s: %w", key, err)
}

// Put writes the file: to a temp file first, then, holding the key's lock,
// checks the conditions and renames it into place.
func (d *Dir) Put(ctx context.Context, key string, body io.Reader, opt PutOptions) (Info, error) {
	return d.write(key, body, opt, nil)
}

// write is Put; check, when set, vets the ETag of what was read from body
// before anything is renamed into place.
func (d *Dir) write(key string, body io.Reader, opt PutOptions, check func(etag string) error) (Info, error) {
	name, err := d.file(key)
	if err != nil {
		return Info{}, err
	}
	tmp, err := os.CreateTemp(d.tmp, "put-*")
	if err != nil {
		return Info{}, &UnavailableError{Op: "put", Temporary: true, Err: err}
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			_ = os.Remove(tmp.Name()) // it never became a file
		}
	}()
	h := md5.New()
	buf := copyBuffers.Get().(*[]byte)
	n, err := io.CopyBuffer(io.MultiWriter(tmp, h), body, *buf)
	copyBuffers.Put(buf)
	if err != nil {
		return Info{}, putError(key, err)
	}
	if opt.Size >= 0 && n != opt.Size {
		return Info{}, fmt.Errorf("writing %s: got %d bytes, want %d", key, n, opt.Size)
	}
	if err := tmp.Sync(); err != nil {
		return Info{}, putError(key, err)
	}
	st, err := tmp.Stat()
	if err != nil {
		return Info{}, &UnavailableError{Op: "put", Temporary: true, Err: err}
	}
	ct := opt.ContentType
	if ct == "" {
		ct = hqpath.GuessType(key)
	}
	meta := dirMeta{ETag: `"` + hex.EncodeToString(h.Sum(nil)) + `"`, ContentType: ct, Size: n, MTime: st.ModTime().UnixNano()}
	b, _ := json.Marshal(meta)                         // a plain struct always marshals
	_ = unix.Fsetxattr(int(tmp.Fd()), metaXattr, b, 0) // without xattrs the ETag is recomputed on read
	if err := tmp.Close(); err != nil {
		return Info{}, putError(key, err)
	}
	if check != nil {
		if err := check(meta.ETag); err != nil {
			return Info{}, err
		}
	}

	mu := d.lock(key)
	mu.Lock()
	defer mu.Unlock()
	if opt.IfMatch != "" || opt.IfNoneMatch != "" {
		cur, err := d.stat(key)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Info{}, err
		}
		if opt.IfNoneMatch != "" && exists && matchETag(opt.IfNoneMatch, cur.ETag) {
			return Info{}, ErrPrecondition
		}
		if opt.IfMatch != "" && (!exists || !matchETag(opt.IfMatch, cur.ETag)) {
			return Info{}, ErrPrecondition
		}
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return Info{}, ErrConflict
		}
		return Info{}, &UnavailableError{Op: "put", Temporary: true, Err: err}
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTDIR) {
			return Info{}, ErrConflict
		}
		return Info{}, &UnavailableError{Op: "put", Temporary: true, Err: err}
	}
	done = true
	syncDir(filepath.Dir(name))
	return Info{Key: key, Size: n, ETag: meta.ETag, LastModified: st.ModTime().UTC().Truncate(time.Second), ContentType: ct}, nil
}

// Delete removes the file and the folders it leaves empty.
func (d *Dir) Delete(ctx context.Context, key, ifMatch string) error {
	name, err := d.file(key)
	if err != nil {
		return err
	}
	mu := d.lock(key)
	mu.Lock()
	defer mu.Unlock()
	cur, err := d.stat(key)
	if errors.Is(err, ErrNotFound) {
		if ifMatch != "" {
			return ErrPrecondition
		}
		return nil
	}
	if err != nil {
		return err
	}
	if ifMatch != "" && !matchETag(ifMatch, cur.ETag) {
		return ErrPrecondition
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &UnavailableError{Op: "delete", Temporary: true, Err: err}
	}
	d.prune(name)
	return nil
}

// prune removes the folders that the removal of name left empty: S3 has
// no empty folders.
func (d *Dir) prune(name string) {
	for dir := filepath.Dir(name); dir != d.root && strings.HasPrefix(dir, d.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // fails once a folder still holds something
			break
		}
	}
}

// errSourceChanged is a copy whose source no longer matched If-Match; it
// is told apart from a destination that exists (both fail a condition).
var errSourceChanged = fmt.Errorf("the source changed: %w", ErrPrecondition)

// Copy writes a copy of src's bytes as dst, as Put writes a file: the
// ETag is that of the bytes actually copied, so If-Match is checked
// against exactly what was copied even if src is replaced meanwhile.
func (d *Dir) Copy(ctx context.Context, src, dst string, opt CopyOptions) (Info, error) {
	name, err := d.file(src)
	if err != nil {
		return Info{}, err
	}
	f, err := os.Open(name)
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil && !st.Mode().IsRegular() {
			err = fs.ErrNotExist
		}
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		return Info{}, d.missing(err, opt.IfMatch, "copy")
	}
	defer f.Close()
	ct := movedType(src, dst, d.contentType(src, name))
	popt := PutOptions{ContentType: ct, Size: -1}
	if !opt.Overwrite {
		popt.IfNoneMatch = "*"
	}
	inf, err := d.write(dst, f, popt, func(etag string) error {
		if opt.IfMatch != "" && !matchETag(opt.IfMatch, etag) {
			return errSourceChanged
		}
		return nil
	})
	if errors.Is(err, ErrPrecondition) && !errors.Is(err, errSourceChanged) {
		return Info{}, ErrExists
	}
	if errors.Is(err, errSourceChanged) {
		return Info{}, ErrPrecondition
	}
	return inf, err
}

// missing translates a failure to open a source: a missing one is
// ErrNotFound, or ErrPrecondition when a version was required.
func (d *Dir) missing(err error, ifMatch, op string) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, ErrNotFound) {
		if ifMatch != "" {
			return ErrPrecondition
		}
		return ErrNotFound
	}
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return err
	}
	return &UnavailableError{Op: op, Temporary: true, Err: err}
}

// readMeta reads the record kept in the file's extended attribute; false
// when there is none or it is damaged.
func readMeta(name string) (dirMeta, bool) {
	var meta dirMeta
	buf := make([]byte, 512)
	n, err := unix.Getxattr(name, metaXattr, buf)
	if err != nil || json.Unmarshal(buf[:n], &meta) != nil {
		return dirMeta{}, false
	}
	return meta, true
}

// contentType is the type recorded for the file at name, or the guess
// from the key's extension when none is.
func (d *Dir) contentType(key, name string) string {
	if meta, ok := readMeta(name); ok && meta.ContentType != "" {
		return meta.ContentType
	}
	return hqpath.GuessType(key)
}

// Move renames src to dst: one rename(2), holding both keys' locks, so no
// crash can leave both files or neither. The file keeps its inode, bytes,
// ETag and times.
func (d *Dir) Move(ctx context.Context, src, dst string, opt CopyOptions) (Info, error) {
	srcName, err := d.file(src)
	if err != nil {
		return Info{}, err
	}
	dstName, err := d.file(dst)
	if err != nil {
		return Info{}, err
	}
	defer d.lockPair(src, dst)()
	cur, err := d.stat(src)
	if err != nil {
		return Info{}, d.missing(err, opt.IfMatch, "move")
	}
	if opt.IfMatch != "" && !matchETag(opt.IfMatch, cur.ETag) {
		return Info{}, ErrPrecondition
	}
	if !opt.Overwrite {
		switch _, err := d.stat(dst); {
		case err == nil:
			return Info{}, ErrExists
		case !errors.Is(err, ErrNotFound):
			return Info{}, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(dstName), 0o700); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return Info{}, ErrConflict
		}
		return Info{}, &UnavailableError{Op: "move", Temporary: true, Err: err}
	}
	if err := os.Rename(srcName, dstName); err != nil {
		d.prune(dstName) // the folders made for dst, if they are empty
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTDIR) {
			return Info{}, ErrConflict
		}
		return Info{}, &UnavailableError{Op: "move", Temporary: true, Err: err}
	}
	if TestHookAfterCopy != nil {
		TestHookAfterCopy()
	}
	syncDir(filepath.Dir(dstName))
	syncDir(filepath.Dir(srcName))
	d.prune(srcName)
	if ct := movedType(src, dst, cur.ContentType); ct != cur.ContentType {
		d.setType(dstName, ct)
		cur.ContentType = ct
	}
	cur.Key = dst
	return cur, nil
}

// setType records a new content type for the file at name.
func (d *Dir) setType(name, ct string) {
	st, err := os.Stat(name)
	if err != nil {
		return
	}
	meta, ok := readMeta(name)
	if !ok || meta.Size != st.Size() || meta.MTime != st.ModTime().UnixNano() {
		return // no current record: the type is guessed from the name on every read
	}
	meta.ContentType = ct
	if b, err := json.Marshal(meta); err == nil {
		_ = unix.Setxattr(name, metaXattr, b, 0)
	}
}

// lockPair takes the locks of two keys in a fixed order (once when they
// share one) and returns the function that releases them.
func (d *Dir) lockPair(a, b string) func() {
	ia := maphash.String(d.seed, a) % uint64(len(d.locks))
	ib := maphash.String(d.seed, b) % uint64(len(d.locks))
	if ia > ib {
		ia, ib = ib, ia
	}
	d.locks[ia].Lock()
	if ib != ia {
		d.locks[ib].Lock()
	}
	return func() {
		if ib != ia {
			d.locks[ib].Unlock()
		}
		d.locks[ia].Unlock()
	}
}

// syncDir makes a rename in dir durable; a failure loses nothing
// acknowledged yet.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// List walks the tree below the prefix in S3's key order.
func (d *Dir) List(ctx context.Context, opt ListOptions) (ListPage, error) {
	if opt.Token != "" && (!strings.HasPrefix(opt.Token, opt.Prefix) || opt.Token == opt.Prefix) {
		return ListPage{}, ErrBadToken
	}
	// The folder that holds the prefix, and the start of names within it.
	base, namePrefix := "", opt.Prefix
	if i := strings.LastIndexByte(opt.Prefix, '/'); i >= 0 {
		base, namePrefix = opt.Prefix[:i+1], opt.Prefix[i+1:]
	}
	w := &walker{d: d, opt: opt, after: opt.Token}
	err := w.walk(ctx, base, namePrefix)
	if err != nil && !errors.Is(err, errPageFull) {
		return ListPage{}, err
	}
	if errors.Is(err, errPageFull) {
		w.page.Next = w.last
	}
	return w.page, nil
}

var errPageFull = errors.New("page full")

type walker struct {
	d     *Dir
	opt   ListOptions
	after string // list only keys (or folders) after this one
	page  ListPage
	last  string
}

type dirEntry struct {
	name  string // sort key: the name, with "/" appended for folders
	isDir bool
}

// walk lists folder base (a key prefix ending in "/" or "") in key order.
func (w *walker) walk(ctx context.Context, base, namePrefix string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dirName := w.d.root
	if base != "" {
		var err error
		if dirName, err = w.d.file(strings.TrimSuffix(base, "/")); err != nil {
			return err
		}
	}
	f, err := os.Open(dirName)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return &UnavailableError{Op: "list", Temporary: true, Err: err}
	}
	des, err := f.ReadDir(-1)
	f.Close()
	if errors.Is(err, syscall.ENOTDIR) {
		return nil // the prefix names a file: nothing lies under it
	}
	if err != nil {
		return &UnavailableError{Op: "list", Temporary: true, Err: err}
	}
	ents := make([]dirEntry, 0, len(des))
	for _, de := range des {
		n := de.Name()
		if !strings.HasPrefix(n, namePrefix) || (base == "" && n == ".tmp") {
			continue
		}
		isDir := de.IsDir()
		if de.Type()&fs.ModeSymlink != 0 {
			continue // a link could lead out of the store; S3 has no such thing
		}
		if !isDir && !de.Type().IsRegular() {
			continue
		}
		if isDir {
			n += "/"
		}
		ents = append(ents, dirEntry{n, isDir})
	}
	slices.SortFunc(ents, func(a, b dirEntry) int { return strings.Compare(a.name, b.name) })
	for _, e := range ents {
		key := base + e.name
		if e.isDir {
			// Every key below starts with key; skip the folder when all of it
			// comes before the token, descend when the token lies inside it.
			if w.after != "" && w.after >= key && !strings.HasPrefix(w.after, key) {
				continue
			}
			if w.opt.Delimiter == "/" {
				if w.after != "" && strings.HasPrefix(w.after, key) {
					continue // this folder was the last entry of the previous page
				}
				if !w.d.hasFile(filepath.Join(dirName, strings.TrimSuffix(e.name, "/"))) {
					continue // S3 has no empty folders
				}
				if err := w.add(key, nil); err != nil {
					return err
				}
				continue
			}
			if err := w.walk(ctx, key, ""); err != nil {
				return err
			}
			continue
		}
		if w.after != "" && key <= w.after {
			continue
		}
		st, err := os.Stat(filepath.Join(dirName, e.name))
		if err != nil || !st.Mode().IsRegular() {
			continue // removed while we listed
		}
		inf, err := w.d.info(key, filepath.Join(dirName, e.name), st)
		if err != nil {
			continue
		}
		if err := w.add(key, &inf); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) add(key string, inf *Info) error {
	if len(w.page.Files)+len(w.page.Folders) >= w.opt.Limit {
		return errPageFull
	}
	if inf != nil {
		w.page.Files = append(w.page.Files, *inf)
	} else {
		w.page.Folders = append(w.page.Folders, key)
	}
	w.last = key
	return nil
}

// hasFile reports whether the tree at dir holds at least one regular file.
func (d *Dir) hasFile(dir string) bool {
	found := errors.New("found")
	err := filepath.WalkDir(dir, func(_ string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if de.Type().IsRegular() {
			return found
		}
		return nil
	})
	return err == found
}
