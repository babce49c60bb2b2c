package itest

import (
	"regexp"
	"strings"
	"sync"
)

// Secrets are the secrets a test run has seen (tokens, keys, tickets,
// passwords), so that every hqd it starts can have its output checked
// against all of them.
type Secrets struct{ m sync.Map } // secret → what it is

// Note remembers a secret. Short tokens are test garbage ("abc"), and
// passwords of letters only are the weak ones tests send to be refused
// ("password"): both would match innocent log text.
func (s *Secrets) Note(secret, what string) {
	switch {
	case what == "password" && strings.Trim(secret, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == "":
	case what != "password" && len(secret) < 20:
	default:
		s.m.Store(secret, what)
	}
}

// Forget drops a secret (a test's own sample).
func (s *Secrets) Forget(secret string) { s.m.Delete(secret) }

// jwtShape is any JWT, whoever issued it.
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.`)

// Leaks lists what of the secrets noted so far, or anything shaped like a
// JWT, out carries.
func (s *Secrets) Leaks(out string) []string {
	var found []string
	if m := jwtShape.FindString(out); m != "" {
		found = append(found, "a JWT ("+m[:20]+"…)")
	}
	s.m.Range(func(k, v any) bool {
		if strings.Contains(out, k.(string)) {
			found = append(found, "a "+v.(string))
		}
		return true
	})
	return found
}
