package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// do sends one request to hqd and reads the whole answer.
func (v *vm) do(ctx context.Context, method, path, token string, body []byte, header ...string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, v.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// cognito calls the dev identity provider (README "Using hqd dev").
func (v *vm) cognito(ctx context.Context, action string, in any, out any) (int, error) {
	b, _ := json.Marshal(in)
	status, body, err := v.do(ctx, "POST", "/dev/cognito/", "", b,
		"X-Amz-Target", "AWSCognitoIdentityProviderService."+action, "Content-Type", "application/x-amz-json-1.1")
	if err != nil {
		return 0, fmt.Errorf("%s: %w", action, err)
	}
	if status != 200 {
		return status, fmt.Errorf("%s = %d %s", action, status, body)
	}
	return status, json.Unmarshal(body, out)
}

// signIn signs email up (once) and in, and returns an access token.
func (v *vm) signIn(ctx context.Context, email string) (string, error) {
	if v.clientID == "" {
		var cfg struct{ ClientID string }
		status, body, err := v.do(ctx, "GET", "/api/config", "", nil)
		if err != nil || status != 200 || json.Unmarshal(body, &cfg) != nil || cfg.ClientID == "" {
			return "", fmt.Errorf("GET /api/config = %d %s %v", status, body, err)
		}
		v.clientID = cfg.ClientID
	}
	const password = "Passw0rd!"
	var ignored any
	if _, err := v.cognito(ctx, "SignUp", map[string]string{"ClientId": v.clientID, "Username": email, "Password": password}, &ignored); err != nil &&
		!strings.Contains(err.Error(), "UsernameExists") {
		return "", err
	}
	var auth struct{ AuthenticationResult struct{ AccessToken string } }
	if _, err := v.cognito(ctx, "InitiateAuth", map[string]any{"ClientId": v.clientID, "AuthFlow": "USER_PASSWORD_AUTH",
		"AuthParameters": map[string]string{"USERNAME": email, "PASSWORD": password}}, &auth); err != nil {
		return "", err
	}
	if auth.AuthenticationResult.AccessToken == "" {
		return "", fmt.Errorf("InitiateAuth for %s gave no access token", email)
	}
	return auth.AuthenticationResult.AccessToken, nil
}

type job struct {
	ID, Status, Events string
}

// submit asks for a verify job of target.
func (v *vm) submit(ctx context.Context, token, target string) (job, error) {
	var j job
	status, body, err := v.do(ctx, "POST", "/api/verify", token, []byte(`{"target":"`+target+`"}`), "Content-Type", "application/json")
	if err == nil && status != 202 {
		err = fmt.Errorf("POST /api/verify %s = %d %s", target, status, body)
	}
	if err == nil {
		err = json.Unmarshal(body, &j)
	}
	return j, err
}

// startJob submits a verify job of target and opens its event stream.
func (v *vm) startJob(ctx context.Context, token, target string) (*stream, error) {
	j, err := v.submit(ctx, token, target)
	if err != nil {
		return nil, err
	}
	return v.openStream(ctx, j.Events, token)
}

// event is one server-sent event.
type event struct {
	ID   int64
	Type string
	Data map[string]any
}

func (e event) msg() string { s, _ := e.Data["msg"].(string); return s }

// stream is an open event stream, read on its own goroutine.
type stream struct {
	events chan event    // every event, closed when the stream ends
	opened chan struct{} // closed once the retry hint arrived (the stream is live)
	cancel context.CancelFunc

	mu       sync.Mutex
	closedAt time.Time
	err      error
}

// openStream opens path's event stream.
func (v *vm) openStream(ctx context.Context, path, token string) (*stream, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	req, _ := http.NewRequestWithContext(ctx, "GET", v.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := v.client.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s = %d %s", path, resp.StatusCode, b)
	}
	s := &stream{events: make(chan event, 4096), opened: make(chan struct{}), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev event
		opened := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "retry:"):
				if !opened {
					opened = true
					close(s.opened)
				}
			case strings.HasPrefix(line, "id: "):
				ev.ID, _ = strconv.ParseInt(line[4:], 10, 64)
			case strings.HasPrefix(line, "event: "):
				ev.Type = line[7:]
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(line[6:]), &ev.Data)
			case line == "" && ev.Type != "":
				s.events <- ev
				ev = event{}
			}
		}
		s.mu.Lock()
		s.closedAt, s.err = time.Now(), sc.Err()
		s.mu.Unlock()
		if !opened {
			close(s.opened)
		}
		close(s.events)
	}()
	return s, nil
}

// until reads events until one satisfies stop, the stream ends or ctx
// does; it returns what it read and whether stop was satisfied.
func (s *stream) until(ctx context.Context, stop func(event) bool) ([]event, bool) {
	var out []event
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return out, false
			}
			out = append(out, ev)
			if stop(ev) {
				return out, true
			}
		case <-ctx.Done():
			return out, false
		}
	}
}

// rest reads the stream to its end and says when it closed.
func (s *stream) rest(ctx context.Context) ([]event, time.Time, error) {
	evs, _ := s.until(ctx, func(event) bool { return false })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closedAt.IsZero() {
		return evs, time.Time{}, ctx.Err()
	}
	return evs, s.closedAt, s.err
}

// pids are the processes the stand-in said it started ("standin: pid N").
func pids(evs []event) []int {
	var out []int
	for _, ev := range evs {
		if i := strings.Index(ev.msg(), "standin: pid "); i >= 0 {
			var pid int
			if _, err := fmt.Sscanf(ev.msg()[i:], "standin: pid %d", &pid); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
