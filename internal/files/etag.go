package files

import (
	"strings"

	"github.com/quantapix/hqd/internal/hqpath"
)

// matchETag reports whether an If-Match or If-None-Match header value names
// etag: "*" matches any file, otherwise one of a comma-separated list.
// Weak validators compare by their opaque part (RFC 9110 §13.1.2 uses weak
// comparison for If-None-Match; stores only make strong ETags).
func matchETag(header, etag string) bool {
	header = strings.TrimSpace(header)
	if header == "*" {
		return etag != ""
	}
	for cand := range strings.SplitSeq(header, ",") {
		cand = strings.TrimPrefix(strings.TrimSpace(cand), "W/")
		if cand != "" && cand == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// movedType is the content type a file keeps when it moves or is copied
// from src to dst: the one it was given, or, when that was only the guess
// from src's extension, the guess from dst's (notes.txt renamed notes.md
// becomes Markdown).
func movedType(src, dst, ct string) string {
	if ct == "" || ct == hqpath.GuessType(src) {
		return hqpath.GuessType(dst)
	}
	return ct
}
