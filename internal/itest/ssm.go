package itest

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// SSM is a stand-in for SSM's parameter store: it answers
// GetParametersByPath of SSM's JSON protocol, two parameters a page. No SSM
// runs on these machines (LocalStack's needs an account token).
type SSM struct {
	URL    string
	mu     sync.Mutex
	params map[string]string
}

// Set adds or changes a parameter.
func (s *SSM) Set(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.params[name] = value
}

// StandInSSM starts the stand-in with params (full names) until the test ends.
func StandInSSM(t testing.TB, params map[string]string) *SSM {
	s := &SSM{params: maps.Clone(params)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParametersByPath" || !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			http.Error(w, `{"__type":"UnknownOperationException"}`, 400)
			return
		}
		var in struct {
			Path           string
			WithDecryption bool
			NextToken      string
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &in)
		if !in.WithDecryption {
			http.Error(w, `{"__type":"ValidationException","message":"test wants WithDecryption"}`, 400)
			return
		}
		type param struct{ Name, Value, Type string }
		var all []param
		s.mu.Lock()
		defer s.mu.Unlock()
		for k, v := range s.params {
			if strings.HasPrefix(k, in.Path+"/") && !strings.Contains(strings.TrimPrefix(k, in.Path+"/"), "/") {
				all = append(all, param{k, v, "SecureString"})
			}
		}
		slices.SortFunc(all, func(a, b param) int { return strings.Compare(a.Name, b.Name) })
		start := 0
		if in.NextToken != "" {
			for i, p := range all {
				if p.Name == in.NextToken {
					start = i
				}
			}
		}
		out := map[string]any{"Parameters": all[start:min(start+2, len(all))]}
		if start+2 < len(all) {
			out["NextToken"] = all[start+2].Name
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}
