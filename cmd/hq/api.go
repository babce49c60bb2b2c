package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/quantapix/hqd/internal/hqpath"
)

// Errors a remote store reports in terms sync acts on.
var (
	errNotFound     = errors.New("no such file")
	errPrecondition = errors.New("the file changed (precondition failed)")
)

// apiError is hqd's error answer (SPEC §3).
type apiError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
}

func (e *apiError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("%s (HTTP %d", msg, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.RequestID != "" {
		s += ", request " + e.RequestID
	}
	return s + ")"
}

func (e *apiError) Is(target error) bool {
	switch target {
	case errNotFound:
		return e.Status == http.StatusNotFound
	case errPrecondition:
		return e.Status == http.StatusPreconditionFailed
	}
	return false
}

// readAPIError turns a non-2xx answer into an apiError.
func readAPIError(resp *http.Response) error {
	var body struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"requestId"`
		} `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
	e := &apiError{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message, RequestID: body.Error.RequestID}
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get("X-Request-Id")
	}
	return e
}

// newHTTPClient keeps up to conns connections to hqd open for parallel
// transfers. No overall timeout: a transfer takes as long as its bytes do.
func newHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = conns
	t.ResponseHeaderTimeout = 2 * time.Minute
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	// Redirects are not followed: a request may carry a token, a refresh
	// token or a password in its body, which must go nowhere else.
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// getJSON GETs url (with a bearer token when given) and decodes the answer.
func getJSON(ctx context.Context, hc *http.Client, url, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readAPIError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("the answer of %s is not JSON hq understands: %w", url, err)
	}
	return nil
}

// api talks to hqd's files API as the signed-in user.
type api struct {
	s      *sessions
	base   string // hqd's base URL
	prefix string // users/{sub}/hq/: path rules count its length
	http   *http.Client
}

func newAPI(ctx context.Context, e env, conns int) (*api, error) {
	s, err := newSessions(e)
	if err != nil {
		return nil, err
	}
	sess, err := s.fresh(ctx, false)
	if err != nil {
		return nil, err
	}
	return &api{s: s, base: sess.Endpoint, prefix: sess.Prefix, http: newHTTPClient(conns)}, nil
}

// fileURL is the files route of path, each segment escaped so that hqd's
// one percent-decoding gives back exactly path.
func (a *api) fileURL(path string, raw bool) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	u := a.base + "/api/files/" + strings.Join(segs, "/")
	if raw {
		u += "?raw=1"
	}
	return u
}

// do sends a request built by mk (called again for a retry), renewing the
// token first when it nears expiry, and once more when hqd refuses it.
func (a *api) do(ctx context.Context, mk func() (*http.Request, error)) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		sess, err := a.s.fresh(ctx, false)
		if err != nil {
			return nil, err
		}
		req, err := mk()
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+sess.AccessToken)
		resp, err := a.http.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return resp, nil
		}
		resp.Body.Close()
		if err := a.s.refused(ctx, sess.AccessToken); err != nil {
			return nil, err
		}
	}
}

// listing is one page of GET /api/files.
type listing struct {
	Files     []remoteFile `json:"files"`
	Folders   []string     `json:"folders"`
	NextToken string       `json:"nextToken"`
}

// remoteFile is one file of the user's HQ root.
type remoteFile struct {
	Path         string `json:"path"`
	Size         int64  `json:"size"`
	ETag         string `json:"etag"`
	LastModified string `json:"lastModified,omitempty"`
}

// listPage is one page of the listing of prefix.
func (a *api) listPage(ctx context.Context, prefix, delimiter, token string) (*listing, error) {
	q := url.Values{"limit": {"100"}}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if delimiter != "" {
		q.Set("delimiter", delimiter)
	}
	if token != "" {
		q.Set("token", token)
	}
	resp, err := a.do(ctx, func() (*http.Request, error) {
		return http.NewRequestWithContext(ctx, "GET", a.base+"/api/files?"+q.Encode(), nil)
	})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readAPIError(resp)
	}
	var l listing
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return nil, fmt.Errorf("reading the listing: %w", err)
	}
	return &l, nil
}

// list is every file of the user's root.
func (a *api) list(ctx context.Context) ([]remoteFile, error) {
	var all []remoteFile
	token := ""
	for {
		l, err := a.listPage(ctx, "", "", token)
		if err != nil {
			return nil, err
		}
		all = append(all, l.Files...)
		if l.NextToken == "" {
			return all, nil
		}
		token = l.NextToken
	}
}

// get streams path's bytes to w and returns the version it read.
func (a *api) get(ctx context.Context, path string, w io.Writer) (remoteFile, error) {
	resp, err := a.do(ctx, func() (*http.Request, error) {
		return http.NewRequestWithContext(ctx, "GET", a.fileURL(path, true), nil)
	})
	if err != nil {
		return remoteFile{}, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return remoteFile{}, readAPIError(resp)
	}
	return copyBody(path, resp, w)
}

// copyBody streams a file's bytes from resp to w, all of them or an
// error, and closes the body.
func copyBody(path string, resp *http.Response, w io.Writer) (remoteFile, error) {
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return remoteFile{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return remoteFile{}, fmt.Errorf("reading %s: got %d of %d bytes", path, n, resp.ContentLength)
	}
	return remoteFile{Path: path, Size: n, ETag: resp.Header.Get("ETag")}, nil
}

// putCond is a write's condition: ifMatch (an ETag) or create (only if
// the file does not exist); neither writes unconditionally.
type putCond struct {
	ifMatch string
	create  bool
}

// put uploads the file at name as path, streaming it.
func (a *api) put(ctx context.Context, path, name string, cond putCond, progress func(int64)) (remoteFile, error) {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	resp, err := a.do(ctx, func() (*http.Request, error) {
		if f != nil {
			f.Close()
		}
		var err error
		if f, err = os.Open(name); err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		var body io.Reader = f
		if progress != nil {
			body = &countingReader{r: f, add: progress}
		}
		req, err := http.NewRequestWithContext(ctx, "PUT", a.fileURL(path, true), body)
		if err != nil {
			return nil, err
		}
		req.ContentLength = st.Size()
		if st.Size() == 0 {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", hqpath.GuessType(path))
		if cond.ifMatch != "" {
			req.Header.Set("If-Match", cond.ifMatch)
		}
		if cond.create {
			req.Header.Set("If-None-Match", "*")
		}
		return req, nil
	})
	if err != nil {
		return remoteFile{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return remoteFile{}, readAPIError(resp)
	}
	var ans struct {
		Path string `json:"path"`
		ETag string `json:"etag"`
		Size int64  `json:"size"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return remoteFile{}, fmt.Errorf("writing %s: hqd's answer is not JSON hq understands: %w", path, err)
	}
	return remoteFile{Path: path, Size: ans.Size, ETag: ans.ETag}, nil
}

// remove deletes path, only if it is still version ifMatch when given.
func (a *api) remove(ctx context.Context, path, ifMatch string) error {
	resp, err := a.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, "DELETE", a.fileURL(path, false), nil)
		if err == nil && ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		return req, err
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return readAPIError(resp)
	}
	return nil
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r   io.Reader
	add func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.add(int64(n))
	}
	return n, err
}
