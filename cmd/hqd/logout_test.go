package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/quantapix/hqd/internal/itest"
)

// TestLogoutEndsTickets: the stream tickets a sign-in was given stop
// working when it logs out (they used to last their 60 s), while another
// sign-in's keep working; the dev provider's GetUser refuses the
// logged-out access token as hqd does.
func TestLogoutEndsTickets(t *testing.T) {
	verifier := itest.LakeProject(t, map[string]map[string]any{"Proving.Basic": {"transcript": "01-clean-build"}})
	h := startHQD(t, []string{"HQD_LAKE_BIN=" + itest.Standin(t), "HQD_VERIFIER_DIR=" + verifier},
		"dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+t.TempDir())
	h.waitReady()
	phone := devSignIn(t, h, "two@example.com", "Passw0rd!")
	laptop := devSignInAgain(t, h, "two@example.com", "Passw0rd!")
	a, job := submit(t, h, phone.AccessToken, `{"target":"Proving.Basic"}`)
	if a.status != 202 {
		t.Fatalf("submit = %d %s", a.status, a.body)
	}
	var other struct{ Ticket string }
	do(t, "POST", h.URL+"/api/jobs/"+job.ID+"/ticket", laptop.AccessToken, nil).decode(t, &other)
	open := func(ticket string) int {
		c := do(t, "GET", h.URL+job.Events+"?ticket="+ticket, "", nil)
		return c.status
	}
	if s := open(job.Ticket); s != 200 {
		t.Fatalf("the ticket before logout = %d", s)
	}
	b, _ := json.Marshal(map[string]string{"refreshToken": phone.RefreshToken})
	if a := do(t, "POST", h.URL+"/api/auth/logout", phone.AccessToken, bytes.NewReader(b)); a.status != 204 {
		t.Fatalf("logout = %d %s", a.status, a.body)
	}
	if s := open(job.Ticket); s != 401 {
		t.Errorf("the logged-out sign-in's ticket = %d, want 401", s)
	}
	if s := open(other.Ticket); s != 200 {
		t.Errorf("the other sign-in's ticket = %d, want 200", s)
	}
	var cfg struct{ CognitoEndpoint string }
	do(t, "GET", h.URL+"/api/config", "", nil).decode(t, &cfg)
	if a := cognito(t, cfg.CognitoEndpoint, "GetUser", map[string]any{"AccessToken": phone.AccessToken}); a.status != 400 || !bytes.Contains(a.body, []byte("NotAuthorizedException")) {
		t.Errorf("the dev provider's GetUser with a logged-out token = %d %s", a.status, a.body)
	}
	if a := cognito(t, cfg.CognitoEndpoint, "GetUser", map[string]any{"AccessToken": laptop.AccessToken}); a.status != 200 {
		t.Errorf("GetUser with a live token = %d %s", a.status, a.body)
	}
}
