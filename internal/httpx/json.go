package httpx

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/quantapix/hqd/internal/strictjson"
)

// MaxJSONBody is the limit on JSON request bodies (SPEC §3).
const MaxJSONBody = 10 << 20

// WriteJSON writes v as the JSON answer with status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	writeJSON(w, status, v)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
		status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b) // a client gone mid-answer is not our error
}

// DecodeJSON reads a JSON body of at most limit bytes into v, strictly:
// unknown fields, wrong types, trailing data and invalid UTF-8 are refused
// with 400 invalid_request; a body over the limit with 413 body_too_large.
func DecodeJSON(r *http.Request, limit int64, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return TooLarge(limit)
		}
		if errors.Is(err, ErrBodyIdle) {
			return err
		}
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Msg: "could not read the request body", Err: err}
	}
	if int64(len(body)) > limit {
		return TooLarge(limit)
	}
	if !utf8.Valid(body) {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Msg: "the request body is not valid UTF-8"}
	}
	if err := strictjson.Decode(body, v); err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Msg: "malformed JSON body: " + jsonProblem(err), Err: err}
	}
	return nil
}

// TooLarge is the 413 answer for a body over limit bytes.
func TooLarge(limit int64) *Error {
	return Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the request body is larger than %d bytes", limit)
}

// jsonProblem words a decoding error for a person without echoing the body.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ne *strictjson.NameError
	switch {
	case errors.As(err, &ne):
		return ne.Error()
	case errors.Is(err, strictjson.ErrTrailing):
		return "trailing data after the object"
	case errors.As(err, &se):
		return "syntax error"
	case errors.As(err, &te):
		if te.Field != "" {
			return "field " + te.Field + " must be " + te.Type.String()
		}
		return "wrong type, expected " + te.Type.String()
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of body"
	}
	// encoding/json words unknown fields as `json: unknown field "x"`.
	msg := err.Error()
	const p = "json: "
	if len(msg) > len(p) && msg[:len(p)] == p {
		msg = msg[len(p):]
	}
	return msg
}
