package files

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of SPEC §4.
const (
	maxSegment = 255  // bytes in one path segment
	maxKey     = 1024 // bytes in a full key, users/{sub}/hq/ included
)

// PathError says which path rule a path broke. Its message is safe to show.
type PathError struct{ Reason string }

func (e *PathError) Error() string { return e.Reason }

// CheckPath validates a file path relative to the user's root, already
// percent-decoded exactly once. prefix is the user's root; the full key
// must fit in maxKey bytes. Nothing is cleaned: a path that would need
// cleaning is refused.
func CheckPath(prefix, p string) error {
	if p == "" {
		return &PathError{"the path is empty"}
	}
	if strings.HasSuffix(p, "/") {
		return &PathError{"the path ends with /, which names a folder, not a file"}
	}
	if err := checkSegments(p); err != nil {
		return err
	}
	if len(prefix)+len(p) > maxKey {
		return &PathError{fmt.Sprintf("the path is too long: the full key may be at most %d bytes", maxKey)}
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
	if len(root)+len(p) > maxKey {
		return &PathError{fmt.Sprintf("the prefix is too long: the full key may be at most %d bytes", maxKey)}
	}
	return nil
}

func checkSegments(p string) error {
	if p == "" {
		return &PathError{"the path has an empty segment"}
	}
	if !utf8.ValidString(p) {
		return &PathError{"the path is not valid UTF-8"}
	}
	if p[0] == '/' {
		return &PathError{"the path starts with /"}
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\':
			return &PathError{"the path contains a backslash"}
		case c < 0x20 || c == 0x7f:
			return &PathError{"the path contains a control character"}
		}
	}
	for _, r := range p {
		// C1 controls are control characters too (U+0080–U+009F).
		if r >= 0x80 && r <= 0x9f {
			return &PathError{"the path contains a control character"}
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch {
		case seg == "":
			return &PathError{"the path has an empty segment (//)"}
		case seg == "." || seg == "..":
			return &PathError{"the path has a . or .. segment"}
		case len(seg) > maxSegment:
			return &PathError{fmt.Sprintf("a path segment is longer than %d bytes", maxSegment)}
		}
	}
	return nil
}
