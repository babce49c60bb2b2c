package jobs

import (
	"testing"
	"time"

	"github.com/quantapix/hqd/internal/auth"
)

func TestTickets(t *testing.T) {
	loggedOut := map[string]bool{}
	h := NewHandlers(HandlersConfig{Revoked: func(id *auth.Identity) bool { return loggedOut[id.OriginJTI] }}, nil)
	now := time.Now()
	job := &Job{ID: "JOB1", Owner: "alice"}
	signIn := &auth.Identity{Sub: "alice", OriginJTI: "o-1", JTI: "j-1"}
	tk := h.newTicket(job, signIn, now)
	other := h.newTicket(job, &auth.Identity{Sub: "alice", OriginJTI: "o-2", JTI: "j-2"}, now)
	for _, tc := range []struct {
		name   string
		ticket string
		job    string
		at     time.Time
		ok     bool
	}{
		{"fresh", tk, "JOB1", now, true},
		{"reused within a minute", tk, "JOB1", now.Add(59 * time.Second), true},
		{"expired", tk, "JOB1", now.Add(61 * time.Second), false},
		{"another job", tk, "JOB2", now, false},
		{"tampered", tk[:len(tk)-2] + "xx", "JOB1", now, false},
		{"no signature", tk[:len(tk)-44], "JOB1", now, false},
		{"another key", (&Handlers{ticketKey: []byte("other")}).newTicket(job, signIn, now), "JOB1", now, false},
	} {
		owner, ok := h.checkTicket(tc.ticket, tc.job, tc.at)
		if ok != tc.ok || (ok && owner != "alice") {
			t.Errorf("%s: owner %q ok %v, want ok %v", tc.name, owner, ok, tc.ok)
		}
	}
	// A logout ends the tickets of that sign-in, and only those.
	loggedOut["o-1"] = true
	if _, ok := h.checkTicket(tk, "JOB1", now); ok {
		t.Error("a ticket of a logged-out sign-in still opens the stream")
	}
	if _, ok := h.checkTicket(other, "JOB1", now); !ok {
		t.Error("a ticket of another sign-in stopped working")
	}
}
