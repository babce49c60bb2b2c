package jobs

import (
	"testing"
	"time"
)

func TestTickets(t *testing.T) {
	h := NewHandlers(HandlersConfig{}, nil)
	now := time.Now()
	job := &Job{ID: "JOB1", Owner: "alice"}
	tk := h.newTicket(job, now)
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
		{"another key", (&Handlers{ticketKey: []byte("other")}).newTicket(job, now), "JOB1", now, false},
	} {
		owner, ok := h.checkTicket(tc.ticket, tc.job, tc.at)
		if ok != tc.ok || (ok && owner != "alice") {
			t.Errorf("%s: owner %q ok %v, want ok %v", tc.name, owner, ok, tc.ok)
		}
	}
}
