// Package strictjson decodes JSON the way hqd's contract reads it (SPEC
// §3): field names exactly as declared (encoding/json matches them without
// regard to case, so {"TARGET":…} would fill target), no name twice in an
// object (encoding/json keeps the last), no unknown field, no trailing data.
// Request bodies and token claims both go through it.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// NameError is a field name the target does not declare exactly, or one
// given twice.
type NameError struct {
	Path    string // where the object is: "" for the top, "portfolio.legs[1]"
	Name    string
	Problem string // "duplicate", "unknown", or the exact spelling expected
}

func (e *NameError) Error() string {
	where := ""
	if e.Path != "" {
		where = " in " + e.Path
	}
	switch e.Problem {
	case "duplicate":
		return fmt.Sprintf("field %q appears twice%s", e.Name, where)
	case "unknown":
		return fmt.Sprintf("unknown field %q%s", e.Name, where)
	}
	return fmt.Sprintf("field %q%s must be spelled %q", e.Name, where, e.Problem)
}

// ErrTrailing is data after the top-level value.
var ErrTrailing = errors.New("trailing data after the value")

// Decode reads data into v strictly.
func Decode(data []byte, v any) error { return decode(data, v, false) }

// DecodeAllowUnknown is Decode for a peer's protocol that may grow fields
// (the Cognito protocol the dev identity provider speaks): names it does
// not know are skipped, but a case variant of a known one, or a name given
// twice, is still refused.
func DecodeAllowUnknown(data []byte, v any) error { return decode(data, v, true) }

// maxDepth bounds how deeply objects and arrays may nest: no request or
// token hqd reads goes past a handful of levels, and a walk without a
// bound is a way to spend its memory (20,000 "[" cost 600 MiB).
const maxDepth = 64

// ErrTooDeep is JSON nested deeper than maxDepth.
var ErrTooDeep = fmt.Errorf("JSON nested more than %d levels deep", maxDepth)

func decode(data []byte, v any, allowUnknown bool) error {
	w := walker{allowUnknown: allowUnknown}
	wd := json.NewDecoder(bytes.NewReader(data))
	wd.UseNumber() // 1e400 is a number, not an error that would end the walk early
	walkErr := w.checkNames(wd, reflect.TypeOf(v), "", 0)
	var ne *NameError
	if errors.As(walkErr, &ne) || errors.Is(walkErr, ErrTooDeep) {
		return walkErr
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if !allowUnknown {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return err // a syntax or type error, worded by encoding/json
	}
	if walkErr != nil {
		return walkErr // never decode what the walk could not check
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailing
	}
	return nil
}

// fields are a struct's JSON names (embedded structs flattened), each with
// its type.
func fields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" && !strings.HasPrefix(tag, "-,") {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range fields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

type walker struct{ allowUnknown bool }

// checkNames walks the next JSON value, checking every object's names
// against t (nil: anything goes, e.g. under a json.RawMessage or an any).
func (w walker) checkNames(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	if depth > maxDepth {
		return ErrTooDeep
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshaler)) {
		t = nil // its own decoding, or free-form: only duplicates are checked
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		var known map[string]reflect.Type
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			known = fields(t)
		} else if t != nil && t.Kind() == reflect.Map {
			elem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			name, _ := k.(string)
			if seen[name] {
				return &NameError{Path: path, Name: name, Problem: "duplicate"}
			}
			seen[name] = true
			next := elem
			if known != nil {
				ft, ok := known[name]
				if !ok {
					for exact := range known {
						if strings.EqualFold(exact, name) {
							return &NameError{Path: path, Name: name, Problem: exact}
						}
					}
					if !w.allowUnknown {
						return &NameError{Path: path, Name: name, Problem: "unknown"}
					}
				}
				next = ft
			}
			if err := w.checkNames(dec, next, join(path, name), depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
		return err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := w.checkNames(dec, elem, fmt.Sprintf("%s[%d]", path, i+1), depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
