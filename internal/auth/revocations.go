package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/quantapix/hqd/internal/atomicfile"
)

// MaxTokenLifetime is the longest a Cognito access or id token lives
// (an app client can set up to one day). A sign-in ended by logout is
// refused that long, so that no sibling token outlives its denial.
const MaxTokenLifetime = 24 * time.Hour

// Revocations remembers sign-ins ended by logout until their tokens have
// expired (SPEC §5.4). A token is denied by its origin_jti, shared by every
// token of one sign-in, or by its own jti where the issuer sets no
// origin_jti (cognito-local). It is kept in a file so a restart does not
// forget a logout.
type Revocations struct {
	file string // "" keeps them in memory only

	mu      sync.RWMutex
	entries map[string]time.Time // key → until
}

// OpenRevocations loads the revocations kept in file, if any.
func OpenRevocations(file string) (*Revocations, error) {
	r := &Revocations{file: file, entries: map[string]time.Time{}}
	if file == "" {
		return r, nil
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading revocations: %w", err)
	}
	if err := json.Unmarshal(b, &r.entries); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", file, err)
	}
	return r, nil
}

func revocationKeys(id *Identity) []string {
	var keys []string
	if id.OriginJTI != "" {
		keys = append(keys, "origin:"+id.Issuer+"|"+id.OriginJTI)
	}
	if id.JTI != "" {
		keys = append(keys, "jti:"+id.Issuer+"|"+id.JTI)
	}
	return keys
}

// Revoke denies id's sign-in (or, without origin_jti, id itself).
func (r *Revocations) Revoke(id *Identity, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id.OriginJTI != "" {
		r.entries["origin:"+id.Issuer+"|"+id.OriginJTI] = now.Add(MaxTokenLifetime)
	} else if id.JTI != "" {
		r.entries["jti:"+id.Issuer+"|"+id.JTI] = id.Expires
	} else {
		return errors.New("the token has neither origin_jti nor jti: it cannot be revoked")
	}
	for k, until := range r.entries {
		if now.After(until) {
			delete(r.entries, k)
		}
	}
	return r.save()
}

// Revoked says whether id belongs to a sign-in ended by logout.
func (r *Revocations) Revoked(id *Identity) bool {
	if id.OriginJTI == "" && id.JTI == "" {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.entries) == 0 {
		return false
	}
	for _, k := range revocationKeys(id) {
		if _, ok := r.entries[k]; ok {
			return true
		}
	}
	return false
}

func (r *Revocations) save() error {
	if r.file == "" {
		return nil
	}
	b, err := json.Marshal(r.entries)
	if err != nil {
		return err
	}
	return atomicfile.Write(r.file, b)
}
