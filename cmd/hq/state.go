package main

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// stateDir is the folder in DIR where sync keeps its state; it is never
// synced.
const stateDir = ".hq"

// stateVersion changes when the state file's meaning does.
const stateVersion = 1

// state is what the last sync of DIR saw: per path, the remote version
// both sides agreed on and the local file as it was then.
type state struct {
	Version  int               `json:"version"`
	Endpoint string            `json:"endpoint"`
	UserID   string            `json:"userId"`
	Files    map[string]*entry `json:"files"`
}

// entry is one synced path. Size -1 marks the local side as changed
// whatever it holds (after a conflict: the user's file, whatever they make
// of it, is what goes up once the conflict copy is gone).
type entry struct {
	ETag  string `json:"etag"`  // the remote version last synced
	Size  int64  `json:"size"`  // the local file then
	MTime int64  `json:"mtime"` // its modification time, ns
	MD5   string `json:"md5"`   // its bytes' MD5 (hex), which S3 ETags are made of
	// Conflict names the copy of the remote version written beside the
	// file; while it exists the path is left alone.
	Conflict string `json:"conflict,omitempty"`
}

func statePath(dir string) string { return filepath.Join(dir, stateDir, "state.json") }

// loadState reads DIR's state; a folder never synced has an empty one. A
// folder synced as someone else is refused: its state would read their
// files as deleted here.
func loadState(dir string, sess *session) (*state, error) {
	st := &state{Version: stateVersion, Endpoint: sess.Endpoint, UserID: sess.UserID, Files: map[string]*entry{}}
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the sync state: %w", err)
	}
	var old state
	if err := json.Unmarshal(b, &old); err != nil {
		return nil, fmt.Errorf("the sync state %s is damaged (%v): move %s away to sync DIR afresh (files on both sides are kept, differences become conflicts)", statePath(dir), err, filepath.Join(dir, stateDir))
	}
	if old.Version != stateVersion {
		return nil, fmt.Errorf("the sync state %s is of another hq (version %d)", statePath(dir), old.Version)
	}
	if old.Endpoint != sess.Endpoint || old.UserID != sess.UserID {
		return nil, fmt.Errorf("%s was synced with %s as another user (or another hqd); sign in as that user, or move %s away to sync it afresh", dir, old.Endpoint, filepath.Join(dir, stateDir))
	}
	if old.Files == nil {
		old.Files = map[string]*entry{}
	}
	return &old, nil
}

// lockDir makes DIR/.hq and holds its lock: one sync of a folder at a time.
func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Join(dir, stateDir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("making %s: %w", filepath.Join(dir, stateDir), err)
	}
	f, err := os.OpenFile(filepath.Join(dir, stateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another hq sync of %s is running", dir)
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}

// partSize is the multipart part size of hqd's S3 store and of --direct
// uploads: an object of more than one part has the ETag md5(md5s)-N.
const partSize = 8 << 20

// digest is a file's MD5 and the ETag S3 gives it when uploaded in
// partSize parts.
type digest struct {
	MD5       string
	Multipart string
}

// digester computes the digest of the bytes written to it.
type digester struct {
	whole, part hash.Hash
	parts       []byte // the MD5 of each full part so far
	inPart      int    // bytes in the current part
}

func newDigester() *digester { return &digester{whole: md5.New(), part: md5.New()} }

func (g *digester) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		take := min(len(b), partSize-g.inPart)
		g.whole.Write(b[:take])
		g.part.Write(b[:take])
		g.inPart += take
		b = b[take:]
		if g.inPart == partSize {
			g.parts = g.part.Sum(g.parts)
			g.part.Reset()
			g.inPart = 0
		}
	}
	return n, nil
}

// sum is the digest of everything written.
func (g *digester) sum() digest {
	d := digest{MD5: hex.EncodeToString(g.whole.Sum(nil))}
	parts := g.parts
	if g.inPart > 0 || len(parts) == 0 {
		parts = g.part.Sum(parts)
	}
	if count := len(parts) / md5.Size; count > 1 {
		sum := md5.Sum(parts)
		d.Multipart = hex.EncodeToString(sum[:]) + "-" + strconv.Itoa(count)
	}
	return d
}

// bufs are digestFile's read buffers, reused across the many small files
// of a sync.
var bufs = sync.Pool{New: func() any { return new([64 << 10]byte) }}

func digestFile(name string) (digest, error) {
	f, err := os.Open(name)
	if err != nil {
		return digest{}, err
	}
	defer f.Close()
	buf := bufs.Get().(*[64 << 10]byte)
	defer bufs.Put(buf)
	g := newDigester()
	if _, err := io.CopyBuffer(g, struct{ io.Reader }{f}, buf[:]); err != nil { // the struct hides File.WriteTo, so buf is used
		return digest{}, err
	}
	return g.sum(), nil
}

// sameBytes says whether etag is the ETag of bytes with digest d (false
// when it cannot tell, e.g. a multipart ETag of another part size).
func (d digest) sameBytes(etag string) bool {
	e := strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	return e != "" && (e == d.MD5 || e == d.Multipart)
}

// shortETag is the ETag's first 8 characters, for conflict copies' names.
func shortETag(etag string) string {
	e := strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	if len(e) > 8 {
		e = e[:8]
	}
	if e == "" {
		e = "remote"
	}
	return e
}
