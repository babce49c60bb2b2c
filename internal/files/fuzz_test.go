package files

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/quantapix/hqd/internal/hqpath"
)

// FuzzCheckPath: no path the rules accept yields a key outside the
// user's prefix or one that a store would read differently; the dir store
// maps every accepted key to a file under its root.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../x", "a//b", "a/./b", "%2e%2e", "a\\b", "a\x00b", "\xff", "a/", "/a", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	const prefix = "users/user-1/hq/"
	d, err := NewDir(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if hqpath.Check(prefix, p) != nil {
			return
		}
		key := prefix + p
		if !strings.HasPrefix(path.Clean(key), prefix) || path.Clean(key) != key {
			t.Fatalf("accepted %q: key %q is not clean or leaves the prefix", p, key)
		}
		if !utf8.ValidString(p) || strings.ContainsAny(p, "\\\x00") || len(key) > hqpath.MaxKey {
			t.Fatalf("accepted %q", p)
		}
		name, err := d.file(key)
		if err != nil || !strings.HasPrefix(name, d.Root()+"/users/user-1/hq/") {
			t.Fatalf("dir store maps accepted %q to %q (%v)", p, name, err)
		}
	})
}
