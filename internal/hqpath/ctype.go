package hqpath

import (
	"mime"
	"path"
	"strings"
)

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

// GuessType guesses a content type from the file's extension.
func GuessType(key string) string {
	ext := strings.ToLower(path.Ext(key))
	if t, ok := hqTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}
