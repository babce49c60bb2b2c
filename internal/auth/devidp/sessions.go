package devidp

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/quantapix/hqd/internal/atomicfile"
)

// sessionStore keeps each live refresh session as a small file of its own
// (named by the SHA-256 of its refresh token), so that a sign-in, a
// rotation or a revocation writes or removes one file and never rewrites
// the accounts. Expired ones are swept when the provider starts and then
// at most hourly, on a sign-in.
type sessionStore struct {
	dir       string
	mu        sync.Mutex
	lastSweep time.Time
}

func openSessions(dir string) (*sessionStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &sessionStore{dir: dir}
	return s, s.sweep()
}

// sweep removes expired sessions (and torn temp files).
func (s *sessionStore) sweep() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, e := range ents {
		if ss, err := s.get(e.Name()); err == nil && (ss == nil || now.After(ss.Expires)) {
			_ = os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
	s.mu.Lock()
	s.lastSweep = now
	s.mu.Unlock()
	return nil
}

func (s *sessionStore) file(hash string) (string, bool) {
	if hash == "" || strings.ContainsAny(hash, `/\.`) {
		return "", false
	}
	return filepath.Join(s.dir, hash), true
}

// get is the session of a token hash; nil when there is none.
func (s *sessionStore) get(hash string) (*session, error) {
	name, ok := s.file(hash)
	if !ok {
		return nil, nil
	}
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ss session
	if json.Unmarshal(b, &ss) != nil {
		return nil, nil
	}
	return &ss, nil
}

func (s *sessionStore) put(hash string, ss *session) error {
	name, ok := s.file(hash)
	if !ok {
		return errors.New("bad session name")
	}
	s.mu.Lock()
	due := time.Since(s.lastSweep) > time.Hour
	s.mu.Unlock()
	if due {
		_ = s.sweep() // best effort: a failed sweep is tried again in an hour
	}
	b, _ := json.Marshal(ss) // a plain struct always marshals
	return atomicfile.Write(name, b)
}

func (s *sessionStore) remove(hash string) (bool, error) {
	name, ok := s.file(hash)
	if !ok {
		return false, nil
	}
	err := os.Remove(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
