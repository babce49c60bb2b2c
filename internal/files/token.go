package files

import (
	"encoding/base64"
	"encoding/json"
)

// pageToken is the nextToken a client sees. It wraps the store's own token
// with what the listing was for, so a token is honoured only by the same
// user, prefix and delimiter that received it (SPEC §4). It needs no secret:
// every listing is confined to the caller's own prefix whatever the token
// says; the binding turns a foreign or forged token into a clear 400.
type pageToken struct {
	User      string `json:"u"` // the user's log tag
	Prefix    string `json:"p"`
	Delimiter string `json:"d,omitempty"`
	Store     string `json:"s"`
}

func encodeToken(t pageToken) string {
	b, _ := json.Marshal(t) // strings always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken returns the store's token, or ok=false when the token is not
// one this listing handed out.
func decodeToken(s, user, prefix, delimiter string) (store string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", false
	}
	var t pageToken
	if json.Unmarshal(b, &t) != nil || t.Store == "" {
		return "", false
	}
	if t.User != user || t.Prefix != prefix || t.Delimiter != delimiter {
		return "", false
	}
	return t.Store, true
}
