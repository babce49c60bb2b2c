package main

import (
	"strings"
	"testing"

	"github.com/quantapix/hqd/internal/itest"
)

// TestStrictJSON sends every JSON route a body whose names differ from the
// contract's only in case, and one that gives a name twice: each is 400
// invalid_request naming the field (the dev provider answers Cognito's
// SerializationException), and nothing is done.
func TestStrictJSON(t *testing.T) {
	verifier := itest.LakeProject(t, map[string]map[string]any{"Proving.Basic": {"transcript": "01-clean-build"}})
	h := startHQD(t, []string{"HQD_LAKE_BIN=" + itest.Standin(t), "HQD_VERIFIER_DIR=" + verifier},
		"dev", "--addr=127.0.0.1:0", "--metrics-addr=", "--data-dir="+t.TempDir())
	h.waitReady()
	tok := devSignIn(t, h, "strict@example.com", "Passw0rd!")
	if a := do(t, "PUT", h.URL+"/api/files/a.md?raw=1", tok.AccessToken, strings.NewReader("a")); a.status != 200 {
		t.Fatalf("PUT = %d", a.status)
	}
	for _, tc := range []struct{ method, path, body, field string }{
		{"PUT", "/api/files/b.md", `{"content":"Yg==","Content":"YQ=="}`, `"Content"`},
		{"PUT", "/api/files/b.md", `{"content":"Yg==","content":"YQ=="}`, `"content" appears twice`},
		{"POST", "/api/files-move", `{"from":"a.md","to":"c.md","TO":"d.md"}`, `"TO"`},
		{"POST", "/api/files-move", `{"from":"a.md","to":"c.md","to":"d.md"}`, `"to" appears twice`},
		{"POST", "/api/verify", `{"TARGET":"Proving.Basic"}`, `"TARGET"`},
		{"POST", "/api/verify", `{"target":"Proving.Basic","Target":"x"}`, `"Target"`},
		{"POST", "/api/evaluate", `{"portfolio":{"underlying":"SPY","Underlying":"QQQ","legs":[]}}`, `"Underlying"`},
		{"POST", "/api/evaluate", `{"portfolio":{"underlying":"SPY","legs":[{"side":"long","SIDE":"short"}]}}`, `"SIDE"`},
		{"POST", "/api/auth/refresh", `{"refreshToken":"x","RefreshToken":"y"}`, `"RefreshToken"`},
		{"POST", "/api/auth/logout", `{"refreshToken":"x","refreshToken":"y"}`, `"refreshToken" appears twice`},
	} {
		a := do(t, tc.method, h.URL+tc.path, tok.AccessToken, strings.NewReader(tc.body), "Content-Type", "application/json")
		if a.status != 400 || a.code() != "invalid_request" || !strings.Contains(string(a.body), strings.ReplaceAll(tc.field, `"`, `\"`)) {
			t.Errorf("%s %s %s = %d %s, want 400 invalid_request naming %s", tc.method, tc.path, tc.body, a.status, a.body, tc.field)
		}
	}
	for _, p := range []string{"b.md", "c.md", "d.md"} {
		if a := do(t, "GET", h.URL+"/api/files/"+p, tok.AccessToken, nil); a.status != 404 {
			t.Errorf("%s exists after the refusals: %d", p, a.status)
		}
	}
	if a := do(t, "GET", h.URL+"/api/files/a.md?raw=1", tok.AccessToken, nil); a.status != 200 || string(a.body) != "a" {
		t.Errorf("a.md after the refusals = %d %q", a.status, a.body)
	}
	var cfg struct{ ClientID, CognitoEndpoint string }
	do(t, "GET", h.URL+"/api/config", "", nil).decode(t, &cfg)
	a := cognito(t, cfg.CognitoEndpoint, "InitiateAuth", map[string]any{"ClientId": cfg.ClientID, "AuthFlow": "USER_PASSWORD_AUTH",
		"AuthParameters": map[string]string{"USERNAME": "strict@example.com", "PASSWORD": "Passw0rd!"}, "authFlow": "REFRESH_TOKEN_AUTH"})
	if a.status != 400 || !strings.Contains(string(a.body), "SerializationException") {
		t.Errorf("the dev provider took a case variant: %d %s", a.status, a.body)
	}
}
