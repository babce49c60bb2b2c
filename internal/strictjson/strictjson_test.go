package strictjson_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/quantapix/hqd/internal/strictjson"
)

type leg struct {
	Side   string  `json:"side"`
	Strike float64 `json:"strike"`
}

type body struct {
	Target *string         `json:"target"`
	Legs   []leg           `json:"legs"`
	Extra  json.RawMessage `json:"extra"`
	Tags   map[string]int  `json:"tags"`
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: "" for success, else a part of the error
	}{
		{`{"target":"Proving.Basic","legs":[{"side":"long","strike":1}]}`, ""},
		{`{"extra":{"A":1,"a":2},"tags":{"x":1,"X":2}}`, ""}, // free-form and maps: any names
		{`{"TARGET":"x"}`, `field "TARGET" must be spelled "target"`},
		{`{"target":"Proving.Basic","Target":"x"}`, `field "Target" must be spelled "target"`},
		{`{"target":"a","target":"b"}`, `field "target" appears twice`},
		{`{"legs":[{"side":"long"},{"side":"short","Strike":5}]}`, `field "Strike" in legs[2] must be spelled "strike"`},
		{`{"legs":[{"side":"long","side":"short"}]}`, `field "side" appears twice in legs[1]`},
		{`{"extra":{"a":1,"a":2}}`, `field "a" appears twice in extra`},
		{`{"tags":{"x":1,"x":2}}`, `field "x" appears twice in tags`},
		{`{"fast":true}`, `unknown field "fast"`},
		{`{"target":"a"} {}`, "trailing data"},
		{`{"target":`, "unexpected EOF"},
	} {
		var b body
		err := strictjson.Decode([]byte(tc.in), &b)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
	// A peer's protocol: unknown names pass, case variants and twins do not.
	if err := strictjson.DecodeAllowUnknown([]byte(`{"target":"a","ClientMetadata":{}}`), &body{}); err != nil {
		t.Errorf("DecodeAllowUnknown refused an unknown field: %v", err)
	}
	for _, in := range []string{`{"Target":"a"}`, `{"target":"a","target":"b"}`} {
		if err := strictjson.DecodeAllowUnknown([]byte(in), &body{}); err == nil {
			t.Errorf("DecodeAllowUnknown(%s) accepted it", in)
		}
	}
	// A number the walk cannot hold must not switch the checks off, and
	// depth is bounded.
	for _, in := range []string{`{"extra":1e400,"Target":"b"}`, `{"extra":1e400,"target":"a","target":"b"}`} {
		if err := strictjson.Decode([]byte(in), &body{}); err == nil {
			t.Errorf("Decode(%s) accepted it", in)
		}
		if err := strictjson.DecodeAllowUnknown([]byte(strings.Replace(in, `"extra"`, `"zz"`, 1)), &body{}); err == nil {
			t.Errorf("DecodeAllowUnknown(%s) accepted it", in)
		}
	}
	if err := strictjson.Decode([]byte(`{"extra":`+strings.Repeat("[", 20000)), &body{}); !errors.Is(err, strictjson.ErrTooDeep) {
		t.Errorf("20,000 levels = %v, want ErrTooDeep", err)
	}
	var ne *strictjson.NameError
	if err := strictjson.Decode([]byte(`{"Target":"x"}`), &body{}); !errors.As(err, &ne) || ne.Name != "Target" {
		t.Errorf("the error is not a NameError: %v", err)
	}
}

// FuzzDecode: whatever Decode accepts names every field exactly as
// declared, and none twice, at every level.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"target":"a","legs":[{"side":"long","strike":1}]}`, `{"TARGET":"x"}`, `{"target":"a","target":"b"}`,
		`{"legs":[{"side":"l","Side":"s"}]}`, `{"extra":{"a":1,"a":2}}`, `{"tags":{"x":1}}`, `[]`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var b body
		if strictjson.Decode([]byte(in), &b) != nil {
			return
		}
		dec := json.NewDecoder(strings.NewReader(in))
		var walk func(known map[string]bool)
		walk = func(known map[string]bool) {
			tok, err := dec.Token()
			if err != nil {
				t.Fatalf("accepted %q, which does not parse: %v", in, err)
			}
			switch tok {
			case json.Delim('{'):
				seen := map[string]bool{}
				for dec.More() {
					k, _ := dec.Token()
					name := k.(string)
					if seen[name] {
						t.Fatalf("accepted %q with %q twice", in, name)
					}
					seen[name] = true
					if known != nil && !known[name] {
						t.Fatalf("accepted %q with the undeclared name %q", in, name)
					}
					var next map[string]bool
					if name == "legs" && known != nil {
						next = map[string]bool{"side": true, "strike": true}
					}
					walk(next)
				}
				_, _ = dec.Token()
			case json.Delim('['):
				for dec.More() {
					walk(known)
				}
				_, _ = dec.Token()
			}
		}
		walk(map[string]bool{"target": true, "legs": true, "extra": true, "tags": true})
	})
}
