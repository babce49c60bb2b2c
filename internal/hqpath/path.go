// Package hqpath holds the rules every HQ file path follows (SPEC §4) and
// the content type a file's name suggests: shared by hqd's stores and by
// the hq client, which checks a local name before it asks the server.
package hqpath

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of SPEC §4.
const (
	MaxSegment = 255  // bytes in one path segment
	MaxKey     = 1024 // bytes in a full key, users/{sub}/hq/ included
)

// Error says which path rule a path broke. Its message is safe to show.
type Error struct{ Reason string }

func (e *Error) Error() string { return e.Reason }

// Check validates a file path relative to the user's root, already
// percent-decoded exactly once. prefix is the user's root; the full key
// must fit in MaxKey bytes. Nothing is cleaned: a path that would need
// cleaning is refused.
func Check(prefix, p string) error {
	if p == "" {
		return &Error{"the path is empty"}
	}
	if strings.HasSuffix(p, "/") {
		return &Error{"the path ends with /, which names a folder, not a file"}
	}
	if err := checkSegments(p); err != nil {
		return err
	}
	if len(prefix)+len(p) > MaxKey {
		return &Error{fmt.Sprintf("the path is too long: the full key may be at most %d bytes", MaxKey)}
	}
	return nil
}

// CheckPrefix validates the prefix query of a listing: like a path, but it
// may be empty, may end with "/" and its last segment may be partial.
func CheckPrefix(root, p string) error {
	if p == "" {
		return nil
	}
	if err := checkSegments(strings.TrimSuffix(p, "/")); err != nil {
		return err
	}
	if len(root)+len(p) > MaxKey {
		return &Error{fmt.Sprintf("the prefix is too long: the full key may be at most %d bytes", MaxKey)}
	}
	return nil
}

func checkSegments(p string) error {
	if p == "" {
		return &Error{"the path has an empty segment"}
	}
	if !utf8.ValidString(p) {
		return &Error{"the path is not valid UTF-8"}
	}
	if p[0] == '/' {
		return &Error{"the path starts with /"}
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\':
			return &Error{"the path contains a backslash"}
		case c < 0x20 || c == 0x7f:
			return &Error{"the path contains a control character"}
		}
	}
	for _, r := range p {
		// C1 controls are control characters too (U+0080–U+009F).
		if r >= 0x80 && r <= 0x9f {
			return &Error{"the path contains a control character"}
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch {
		case seg == "":
			return &Error{"the path has an empty segment (//)"}
		case seg == "." || seg == "..":
			return &Error{"the path has a . or .. segment"}
		case len(seg) > MaxSegment:
			return &Error{fmt.Sprintf("a path segment is longer than %d bytes", MaxSegment)}
		}
	}
	return nil
}
