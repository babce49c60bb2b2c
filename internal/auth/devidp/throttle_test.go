package devidp

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestThrottleParallel: guesses sent at once are counted as they arrive,
// not after their passwords are checked, so twenty parallel guesses at one
// account get five tries, and an address's limit holds the same way.
func TestThrottleParallel(t *testing.T) {
	th := newThrottle()
	var tried atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if th.attempt("victim@example.com", "203.0.113.9") == nil {
				tried.Add(1) // a wrong password: nothing taken back
			}
		}()
	}
	wg.Wait()
	if n := tried.Load(); n != freeFailures {
		t.Errorf("%d parallel guesses got through, want %d", n, freeFailures)
	}
	tried.Store(0)
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if th.attempt(string(rune('a'+i%26))+"@example.com", "198.51.100.7") == nil {
				tried.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := tried.Load(); n != addrLimit {
		t.Errorf("%d guesses from one address got through, want %d", n, addrLimit)
	}
}
