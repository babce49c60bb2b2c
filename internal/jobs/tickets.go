package jobs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/httpx"
)

func (h *Handlers) ticket(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	job, err := h.Manager.Get(id.Sub, chi.URLParam(r, "id"))
	if err != nil {
		return notFound()
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"ticket": h.newTicket(job, time.Now())})
}

// TicketTTL is how long a stream ticket works (SPEC §6.1).
const TicketTTL = 60 * time.Second

// newTicket signs "job id, owner, expiry": a ticket opens that job's
// stream for that user only, reusably until it expires.
func (h *Handlers) newTicket(j *Job, now time.Time) string {
	payload := j.ID + "|" + j.Owner + "|" + strconv.FormatInt(now.Add(TicketTTL).Unix(), 10)
	mac := hmac.New(sha256.New, h.ticketKey)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// checkTicket returns the owner a ticket names for job id.
func (h *Handlers) checkTicket(t, jobID string, now time.Time) (owner string, ok bool) {
	p64, s64, found := strings.Cut(t, ".")
	if !found {
		return "", false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sig, err2 := base64.RawURLEncoding.DecodeString(s64)
	if err1 != nil || err2 != nil {
		return "", false
	}
	mac := hmac.New(sha256.New, h.ticketKey)
	mac.Write(payload)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return "", false
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 || parts[0] != jobID {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || now.Unix() > exp {
		return "", false
	}
	return parts[1], true
}
