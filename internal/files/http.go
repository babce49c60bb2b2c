package files

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/quantapix/hqd/internal/auth"
	"github.com/quantapix/hqd/internal/hqpath"
	"github.com/quantapix/hqd/internal/httpx"
)

// maxEnvelope is the largest file read in envelope mode: its base64 form
// plus the JSON around it stays under the 10 MiB JSON limit (SPEC §4).
const maxEnvelope = 7.5 * (1 << 20)

// Handlers serves /api/files. Every route sits behind auth.Require.
type Handlers struct {
	Store     Store
	MaxUpload int64 // raw uploads; HQD_MAX_UPLOAD
}

// Routes mounts the five routes.
func (h *Handlers) Routes(r chi.Router) {
	r.Method(http.MethodPost, "/api/files-move", httpx.HandlerFunc(h.move))
	r.Method(http.MethodGet, "/api/files", httpx.HandlerFunc(h.list))
	r.Method(http.MethodGet, "/api/files/*", httpx.HandlerFunc(h.get))
	r.Method(http.MethodPut, "/api/files/*", httpx.HandlerFunc(h.put))
	r.Method(http.MethodDelete, "/api/files/*", httpx.HandlerFunc(h.delete))
}

const routePrefix = "/api/files/"

// filePath returns the request's file path, percent-decoded exactly once
// from the escaped form of the URL, and the full key it names. chi leaves
// its wildcard encoded or decoded depending on the request, so the path is
// taken from one representation here and checked, never cleaned.
func filePath(r *http.Request, id *auth.Identity) (rel, key string, err error) {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), routePrefix)
	rel, uerr := url.PathUnescape(raw)
	if uerr != nil {
		return "", "", &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_path", Msg: "the path has a malformed percent escape"}
	}
	if err := hqpath.Check(id.Prefix(), rel); err != nil {
		return "", "", &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_path", Msg: err.Error()}
	}
	return rel, id.Prefix() + rel, nil
}

// storeError maps a store's outcome to an answer.
func storeError(err error, rel string) error {
	var ue *UnavailableError
	switch {
	case errors.Is(err, ErrNotFound):
		return &httpx.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such file: " + rel}
	case errors.Is(err, ErrPrecondition):
		return &httpx.Error{Status: http.StatusPreconditionFailed, Code: "precondition_failed", Msg: "the file's current version does not match If-Match / If-None-Match; nothing was changed", Err: err}
	case errors.Is(err, ErrExists):
		return &httpx.Error{Status: http.StatusConflict, Code: "destination_exists", Msg: "a file already exists at " + rel + "; nothing was changed (send \"overwrite\":true to replace it)", Err: err}
	case errors.Is(err, ErrConflict):
		return &httpx.Error{Status: http.StatusConflict, Code: "path_conflict", Msg: "a file and a folder cannot share the name " + rel, Err: err}
	case errors.Is(err, ErrFull):
		return &httpx.Error{Status: http.StatusInsufficientStorage, Code: "storage_full", Msg: "the server has no room for this file; nothing was changed", Err: err}
	case errors.As(err, &ue):
		if ue.Temporary {
			return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Msg: "the file store is unavailable; try again shortly", Err: err, RetryAfter: 5}
		}
		return &httpx.Error{Status: http.StatusBadGateway, Code: "store_error", Msg: "the file store refused the request", Err: err, RetryAfter: 5}
	}
	return fmt.Errorf("file %s: %w", rel, err)
}

type fileInfo struct {
	Path         string `json:"path"`
	Size         int64  `json:"size"`
	ETag         string `json:"etag"`
	LastModified string `json:"lastModified"`
}

type listAnswer struct {
	Files     []fileInfo `json:"files"`
	Folders   *[]string  `json:"folders,omitempty"` // only with a delimiter; then always, even empty
	NextToken string     `json:"nextToken,omitempty"`
}

func badQuery(format string, args ...any) error {
	return httpx.Errorf(http.StatusBadRequest, "invalid_request", format, args...)
}

// list is GET /api/files.
func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	q := r.URL.Query()
	limit := 100
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > 100 || len(v) > 1 {
			return badQuery("limit must be a whole number from 1 to 100")
		}
		limit = n
	}
	delim := q.Get("delimiter")
	if delim != "" && delim != "/" {
		return badQuery("delimiter may only be /")
	}
	prefix := q.Get("prefix")
	if err := hqpath.CheckPrefix(id.Prefix(), prefix); err != nil {
		return &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_path", Msg: "prefix: " + err.Error()}
	}
	opt := ListOptions{Prefix: id.Prefix() + prefix, Delimiter: delim, Limit: limit}
	if t := q.Get("token"); t != "" {
		st, ok := decodeToken(t, id.Tag(), prefix, delim)
		if !ok {
			return &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_token", Msg: "the continuation token does not belong to this listing (user, prefix and delimiter must be the same)"}
		}
		opt.Token = st
	}
	page, err := h.Store.List(r.Context(), opt)
	if errors.Is(err, ErrBadToken) {
		return &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_token", Msg: "the continuation token is not valid", Err: err}
	}
	if err != nil {
		return storeError(err, prefix)
	}
	ans := listAnswer{Files: make([]fileInfo, 0, len(page.Files))}
	root := id.Prefix()
	for _, f := range page.Files {
		rel, ok := strings.CutPrefix(f.Key, root)
		if !ok {
			return fmt.Errorf("store listed %q outside the user's prefix", f.Key) // never shown
		}
		ans.Files = append(ans.Files, fileInfo{Path: rel, Size: f.Size, ETag: f.ETag, LastModified: f.LastModified.UTC().Format(time.RFC3339)})
	}
	if delim != "" {
		folders := make([]string, 0, len(page.Folders))
		for _, p := range page.Folders {
			rel, ok := strings.CutPrefix(p, root)
			if !ok {
				return fmt.Errorf("store listed folder %q outside the user's prefix", p)
			}
			folders = append(folders, rel)
		}
		ans.Folders = &folders
	}
	if page.Next != "" {
		ans.NextToken = encodeToken(pageToken{User: id.Tag(), Prefix: prefix, Delimiter: delim, Store: page.Next})
	}
	return httpx.WriteJSON(w, http.StatusOK, ans)
}

type envelope struct {
	Path         string `json:"path"`
	Content      string `json:"content"`
	ContentType  string `json:"contentType"`
	Size         int64  `json:"size"`
	ETag         string `json:"etag"`
	LastModified string `json:"lastModified"`
}

// get is GET /api/files/{path+}.
func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	rel, key, err := filePath(r, id)
	if err != nil {
		return err
	}
	if httpx.IsRaw(r) {
		return h.getRaw(w, r, rel, key)
	}
	obj, err := h.Store.Get(r.Context(), key, GetOptions{})
	if err != nil {
		return storeError(err, rel)
	}
	defer obj.Body.Close()
	if obj.Size > maxEnvelope {
		return &httpx.Error{Status: http.StatusRequestEntityTooLarge, Code: "file_too_large",
			Msg: fmt.Sprintf("the file is %d bytes; files over 7.5 MiB are read with ?raw=1", obj.Size)}
	}
	buf := make([]byte, obj.Size)
	if _, err := io.ReadFull(obj.Body, buf); err != nil {
		return storeError(&UnavailableError{Op: "get", Temporary: true, Err: err}, rel)
	}
	return httpx.WriteJSON(w, http.StatusOK, envelope{
		Path: rel, Content: base64.StdEncoding.EncodeToString(buf), ContentType: obj.ContentType,
		Size: obj.Size, ETag: obj.ETag, LastModified: obj.LastModified.UTC().Format(time.RFC3339),
	})
}

// fileCSP keeps a stored file inert if a browser ever renders it: it comes
// from the user, not from us.
const fileCSP = "default-src 'none'; sandbox"

func (h *Handlers) getRaw(w http.ResponseWriter, r *http.Request, rel, key string) error {
	opt := GetOptions{IfNoneMatch: r.Header.Get("If-None-Match")}
	if v := r.Header.Get("Range"); v != "" {
		opt.Range = parseRange(v) // an unparsable Range is ignored (RFC 9110 §14.2)
	}
	obj, err := h.Store.Get(r.Context(), key, opt)
	hdr := w.Header()
	switch {
	case errors.Is(err, ErrNotModified):
		if obj != nil && obj.ETag != "" {
			hdr.Set("ETag", obj.ETag)
		}
		w.WriteHeader(http.StatusNotModified)
		return nil
	case errors.Is(err, ErrBadRange):
		e := &httpx.Error{Status: http.StatusRequestedRangeNotSatisfiable, Code: "range_not_satisfiable", Msg: "the requested range is outside the file"}
		if obj != nil && obj.Size > 0 {
			e.Header = http.Header{"Content-Range": {fmt.Sprintf("bytes */%d", obj.Size)}}
		}
		return e
	case err != nil:
		return storeError(err, rel)
	}
	defer obj.Body.Close()
	ct := obj.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	hdr.Set("Content-Type", ct)
	hdr.Set("ETag", obj.ETag)
	hdr.Set("Last-Modified", obj.LastModified.UTC().Format(http.TimeFormat))
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("Cache-Control", "private, no-cache")
	hdr.Set("Content-Security-Policy", fileCSP)
	status := http.StatusOK
	n := obj.Size
	if obj.Partial {
		status = http.StatusPartialContent
		n = obj.Last - obj.First + 1
		hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", obj.First, obj.Last, obj.Size))
	}
	hdr.Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return nil
	}
	if err := copyBody(w, obj.Body); err != nil {
		// The status is out; the client sees a short body. Nothing was changed.
		httpx.LoggerFrom(r.Context()).Warn("raw read cut short", "err", err)
	}
	return nil
}

// copyBody sends a file's bytes. An open file goes as it is, so that
// net/http can use sendfile; anything else (a store's response) through a
// pooled buffer: io.Copy would allocate 32 KiB for every answer, which on
// small files was most of hqd's garbage.
func copyBody(w io.Writer, body io.Reader) error {
	if f, ok := body.(*os.File); ok {
		_, err := io.Copy(w, f)
		return err
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	_, err := io.CopyBuffer(struct{ io.Writer }{w}, body, *buf) // the struct hides w's ReadFrom
	return err
}

// parseRange parses a single-range "bytes=" header; anything else is nil,
// which serves the whole file.
func parseRange(v string) *Range {
	spec, ok := strings.CutPrefix(v, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return nil
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return nil
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return nil
		}
		return &Range{Suffix: n}
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return nil
	}
	end := int64(-1)
	if b != "" {
		if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
			return nil
		}
	}
	return &Range{Start: start, End: end}
}

type putBody struct {
	Content     *string `json:"content"`
	ContentType string  `json:"contentType"`
}

type putAnswer struct {
	Path string `json:"path"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

// put is PUT /api/files/{path+}.
func (h *Handlers) put(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	rel, key, err := filePath(r, id)
	if err != nil {
		return err
	}
	opt := PutOptions{IfMatch: r.Header.Get("If-Match"), IfNoneMatch: r.Header.Get("If-None-Match"), Size: -1}
	if opt.IfNoneMatch != "" && strings.TrimSpace(opt.IfNoneMatch) != "*" {
		return badQuery("If-None-Match on a write may only be *")
	}
	var body io.Reader
	if httpx.IsRaw(r) {
		if r.ContentLength > h.MaxUpload {
			return httpx.TooLarge(h.MaxUpload)
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.MaxUpload)
		body, opt.Size = r.Body, r.ContentLength
		opt.ContentType = r.Header.Get("Content-Type")
		if strings.HasPrefix(opt.ContentType, "application/x-www-form-urlencoded") {
			// What curl --data-binary and bare fetch() send by default: a raw
			// upload is never a form, so the extension decides instead.
			opt.ContentType = ""
		}
	} else {
		var pb putBody
		if err := httpx.DecodeJSON(r, httpx.MaxJSONBody, &pb); err != nil {
			return err
		}
		if pb.Content == nil {
			return badQuery("the body needs a content field (base64); send raw bytes with ?raw=1")
		}
		data, err := base64.StdEncoding.DecodeString(*pb.Content)
		if err != nil {
			return badQuery("content is not valid base64")
		}
		body, opt.Size, opt.ContentType = bytes.NewReader(data), int64(len(data)), pb.ContentType
	}
	if opt.ContentType != "" {
		ct, err := contentType(opt.ContentType)
		if err != nil {
			return err
		}
		opt.ContentType = ct
	}
	inf, err := h.Store.Put(r.Context(), key, body, opt)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return httpx.TooLarge(h.MaxUpload)
		}
		return storeError(err, rel)
	}
	w.Header().Set("ETag", inf.ETag)
	return httpx.WriteJSON(w, http.StatusOK, putAnswer{Path: rel, ETag: inf.ETag, Size: inf.Size})
}

// contentType is a stored file's Content-Type as given, parsed and
// written again in its canonical form (mime.ParseMediaType): anything else
// would be stored and echoed in every read's header.
func contentType(v string) (string, error) {
	mt, params, err := mime.ParseMediaType(v)
	if err == nil && !strings.Contains(mt, "/") {
		err = errors.New("no subtype")
	}
	if err != nil {
		return "", &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_content_type",
			Msg: "the Content-Type is not a media type such as text/markdown; charset=utf-8; nothing was written", Err: err}
	}
	out := mime.FormatMediaType(mt, params)
	if out == "" || len(out) > 256 {
		return "", &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_content_type",
			Msg: "the Content-Type cannot be stored as given (over 256 characters or unprintable parameters); nothing was written"}
	}
	return out, nil
}

// delete is DELETE /api/files/{path+}.
func (h *Handlers) delete(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	rel, key, err := filePath(r, id)
	if err != nil {
		return err
	}
	if err := h.Store.Delete(r.Context(), key, r.Header.Get("If-Match")); err != nil {
		return storeError(err, rel)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type moveBody struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Copy      bool   `json:"copy"`
	Overwrite bool   `json:"overwrite"`
}

// move is POST /api/files-move: a server-side move or copy of one file.
func (h *Handlers) move(w http.ResponseWriter, r *http.Request) error {
	id := auth.MustFromContext(r.Context())
	var mb moveBody
	if err := httpx.DecodeJSON(r, httpx.MaxJSONBody, &mb); err != nil {
		return err
	}
	for _, p := range []struct{ name, path string }{{"from", mb.From}, {"to", mb.To}} {
		if err := hqpath.Check(id.Prefix(), p.path); err != nil {
			return &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_path", Msg: p.name + ": " + err.Error()}
		}
	}
	if mb.From == mb.To {
		return badQuery("from and to name the same file")
	}
	opt := CopyOptions{IfMatch: r.Header.Get("If-Match"), Overwrite: mb.Overwrite}
	op := h.Store.Move
	if mb.Copy {
		op = h.Store.Copy
	}
	inf, err := op(r.Context(), id.Prefix()+mb.From, id.Prefix()+mb.To, opt)
	if err != nil {
		rel := mb.From
		if errors.Is(err, ErrExists) || errors.Is(err, ErrConflict) {
			rel = mb.To
		}
		return storeError(err, rel)
	}
	w.Header().Set("ETag", inf.ETag)
	return httpx.WriteJSON(w, http.StatusOK, putAnswer{Path: mb.To, ETag: inf.ETag, Size: inf.Size})
}
