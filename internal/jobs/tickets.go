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
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"ticket": h.newTicket(job, id, time.Now())})
}

// TicketTTL is how long a stream ticket works (SPEC §6.1).
const TicketTTL = 60 * time.Second

// newTicket signs "job id, owner, expiry, sign-in": a ticket opens that
// job's stream for that user only, reusably until it expires or the
// sign-in it was issued under is logged out (the token's origin_jti and
// jti, which logout revokes).
func (h *Handlers) newTicket(j *Job, id *auth.Identity, now time.Time) string {
	payload := strings.Join([]string{j.ID, j.Owner, strconv.FormatInt(now.Add(TicketTTL).Unix(), 10),
		strings.ReplaceAll(id.Issuer, "|", "%7C"), id.OriginJTI, id.JTI}, "|")
	mac := hmac.New(sha256.New, h.ticketKey)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// checkTicket returns the owner a ticket names for job id, unless its
// sign-in has been logged out.
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
	if len(parts) != 6 || parts[0] != jobID {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || now.Unix() > exp {
		return "", false
	}
	issuer := strings.ReplaceAll(parts[3], "%7C", "|")
	if h.Revoked != nil && h.Revoked(&auth.Identity{Sub: parts[1], Issuer: issuer, OriginJTI: parts[4], JTI: parts[5]}) {
		return "", false
	}
	return parts[1], true
}
