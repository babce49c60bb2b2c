package files

import (
	"mime"
	"path"
	"strings"
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

// hqTypes are the types of files HQ keeps that the system table may lack.
var hqTypes = map[string]string{
	".md":       "text/markdown; charset=utf-8",
	".markdown": "text/markdown; charset=utf-8",
	".yaml":     "application/yaml",
	".yml":      "application/yaml",
	".json":     "application/json",
	".txt":      "text/plain; charset=utf-8",
	".lean":     "text/plain; charset=utf-8",
	".toml":     "application/toml",
	".csv":      "text/csv; charset=utf-8",
}

// guessType guesses a content type from the file's extension.
func guessType(key string) string {
	ext := strings.ToLower(path.Ext(key))
	if t, ok := hqTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// movedType is the content type a file keeps when it moves or is copied
// from src to dst: the one it was given, or, when that was only the guess
// from src's extension, the guess from dst's (notes.txt renamed notes.md
// becomes Markdown).
func movedType(src, dst, ct string) string {
	if ct == "" || ct == guessType(src) {
		return guessType(dst)
	}
	return ct
}
