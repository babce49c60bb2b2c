package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDevSignInThrottle: the dev provider slows password guessing as
// Cognito does — five wrong passwords lock the account (even the right
// password is refused, "Password attempts exceeded"), and one address
// that fails across many accounts is refused altogether — and a sign-in
// writes a session file of its own, never the accounts file.
func TestDevSignInThrottle(t *testing.T) {
	data := t.TempDir()
	h := startHQD(t, nil, "dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+data)
	h.waitReady()
	devSignIn(t, h, "locked@example.com", "Passw0rd!")
	accounts := filepath.Join(data, "dev-idp", "accounts.json")
	before, _ := os.ReadFile(accounts)
	st, _ := os.Stat(accounts)

	var cfg struct{ ClientID, CognitoEndpoint string }
	do(t, "GET", h.URL+"/api/config", "", nil).decode(t, &cfg)
	signIn := func(email, password string) call {
		return cognito(t, cfg.CognitoEndpoint, "InitiateAuth", map[string]any{"ClientId": cfg.ClientID, "AuthFlow": "USER_PASSWORD_AUTH",
			"AuthParameters": map[string]string{"USERNAME": email, "PASSWORD": password}})
	}
	for range 3 {
		if a := signIn("locked@example.com", "Passw0rd!"); a.status != 200 {
			t.Fatalf("sign-in = %d %s", a.status, a.body)
		}
	}
	if after, _ := os.ReadFile(accounts); !bytes.Equal(before, after) {
		t.Error("a sign-in rewrote accounts.json")
	}
	if st2, _ := os.Stat(accounts); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("a sign-in touched accounts.json")
	}
	if ents, _ := os.ReadDir(filepath.Join(data, "dev-idp", "sessions")); len(ents) != 4 {
		t.Errorf("%d session files for four sign-ins", len(ents))
	}

	for i := range 5 {
		if a := signIn("locked@example.com", "wrong-"+fmt.Sprint(i)); a.status != 400 || !bytes.Contains(a.body, []byte("Incorrect username or password")) {
			t.Fatalf("wrong password %d = %d %s", i, a.status, a.body)
		}
	}
	if a := signIn("locked@example.com", "Passw0rd!"); a.status != 400 || !bytes.Contains(a.body, []byte("Password attempts exceeded")) {
		t.Errorf("the right password during the lock = %d %s", a.status, a.body)
	}
	time.Sleep(1100 * time.Millisecond) // the first lock lasts a second
	if a := signIn("locked@example.com", "Passw0rd!"); a.status != 200 {
		t.Errorf("the right password after the lock = %d %s", a.status, a.body)
	}

	// One address guessing across accounts (invented ones included).
	refused := false
	for i := range 40 {
		a := signIn(fmt.Sprintf("guess%d@example.com", i), "Passw0rd!")
		if bytes.Contains(a.body, []byte("TooManyRequestsException")) {
			refused = i >= 25
			break
		}
	}
	if !refused {
		t.Error("an address failing across 40 accounts was never refused (or was refused too soon)")
	}
}
