package devidp

import (
	"sync"
	"time"
)

// throttle slows password guessing as Cognito does: an account that fails
// five times in a row is locked for a second, then twice as long after
// each further failure (at most 15 minutes), whatever the password tried
// next; and one client address may fail at most addrLimit times in
// addrWindow, whichever accounts it tries. Both answer before the password
// is checked, so a guesser costs no bcrypt time either.
type throttle struct {
	mu       sync.Mutex
	accounts map[string]*failures // by lower-case email
	addrs    map[string]*failures // by client IP
	now      func() time.Time
}

type failures struct {
	n     int
	first time.Time // of the address window
	until time.Time // the account's lock
}

const (
	freeFailures = 5
	maxLock      = 15 * time.Minute
	addrLimit    = 30
	addrWindow   = 15 * time.Minute
	maxTracked   = 10000 // entries per map: beyond, the oldest state is dropped
)

func newThrottle() *throttle {
	return &throttle{accounts: map[string]*failures{}, addrs: map[string]*failures{}, now: time.Now}
}

// attempt answers the refusal for a sign-in of email from addr, if any;
// otherwise it counts the attempt as a failure at once, under the same
// lock (parallel guesses cannot all pass before any is counted), and
// succeeded takes it back.
func (t *throttle) attempt(email, addr string) *cognitoError {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if f := t.addrs[addr]; f != nil && now.Sub(f.first) < addrWindow && f.n >= addrLimit {
		return &cognitoError{Type: "TooManyRequestsException", Message: "Too many failed sign-ins from this address; try again later.", Status: 400}
	}
	// Locked: its lock runs, or is about to (a failure still being
	// checked brought the count to the limit).
	if f := t.accounts[email]; f != nil && f.n >= freeFailures && (f.until.IsZero() || now.Before(f.until)) {
		return errorf("NotAuthorizedException", "Password attempts exceeded")
	}
	t.prune()
	f := t.accounts[email]
	if f == nil {
		f = &failures{}
		t.accounts[email] = f
	}
	f.n++
	f.until = time.Time{} // a new lock, if any, starts when this attempt fails
	a := t.addrs[addr]
	if a == nil || now.Sub(a.first) >= addrWindow {
		a = &failures{first: now}
		t.addrs[addr] = a
	}
	a.n++
	return nil
}

// failed confirms a wrong password: from the fifth, the account is locked
// from now for a second, doubling with each further failure (15 min at most).
func (t *throttle) failed(email string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.accounts[email]; f != nil && f.n >= freeFailures {
		f.until = t.now().Add(min(time.Second<<min(f.n-freeFailures, 20), maxLock))
	}
}

// succeeded takes back the attempt of a right password: the account's
// count is cleared, and the address's is one less.
func (t *throttle) succeeded(email, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.accounts, email)
	if a := t.addrs[addr]; a != nil && a.n > 0 {
		a.n--
	}
}

// prune keeps the maps bounded: a flood of invented names or addresses
// must not grow hqd's memory.
func (t *throttle) prune() {
	now := t.now()
	for _, m := range []map[string]*failures{t.accounts, t.addrs} {
		if len(m) < maxTracked {
			continue
		}
		for k, f := range m { // what no longer limits anything
			if now.After(f.until) && (f.first.IsZero() || now.Sub(f.first) >= addrWindow) && f.n < freeFailures {
				delete(m, k)
			}
		}
		for k, f := range m { // still full: unlocked ones before locked ones
			if len(m) < maxTracked {
				break
			}
			if now.After(f.until) {
				delete(m, k)
			}
		}
		for k := range m {
			if len(m) < maxTracked {
				break
			}
			delete(m, k)
		}
	}
}
