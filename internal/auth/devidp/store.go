package devidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/quantapix/hqd/internal/atomicfile"
)

// user is one account of the dev identity provider.
type user struct {
	Sub          string    `json:"sub"`
	Email        string    `json:"email"` // the username: the pool signs in by email
	PasswordHash []byte    `json:"passwordHash"`
	Created      time.Time `json:"created"`
}

// session is what a refresh token stands for; the token itself is never kept.
type session struct {
	Sub       string    `json:"sub"`
	OriginJTI string    `json:"originJti"`
	Expires   time.Time `json:"expires"`
}

// state is the provider's accounts file. Sessions were kept in it before
// they got files of their own (sessions.go); they are read to move them.
type state struct {
	Users    map[string]*user    `json:"users"`              // by lower-case email
	Sessions map[string]*session `json:"sessions,omitempty"` // legacy: by SHA-256 of the refresh token
}

// loadState reads the state file, or starts an empty one.
func loadState(name string) (*state, error) {
	st := &state{Users: map[string]*user{}}
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", name, err)
	}
	if st.Users == nil {
		st.Users = map[string]*user{}
	}
	return st, nil
}

// save writes the accounts atomically, readable by its owner only: on a
// sign-up, never on a sign-in.
func (st *state) save(name string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(name, b)
}

// loadKey reads the signing key, making one on first use, so tokens stay
// valid across restarts of `hqd dev`.
func loadKey(name string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(name)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s holds no PEM key", name)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", name, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s is not an RSA key", name)
		}
		return rk, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, err
	}
	return k, nil
}
