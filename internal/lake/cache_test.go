package lake

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCachePrune(t *testing.T) {
	c, err := NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range []string{"old", "mid", "new"} {
		if err := c.Put(key, &Cached{Events: []json.RawMessage{Event{"msg": strings.Repeat("x", 1000)}.JSON()}, Done: Event{}}); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(time.Duration(i-3) * time.Hour)
		_ = os.Chtimes(filepath.Join(c.dir, key+".json"), at, at)
	}
	if err := c.Prune(2500); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"old": false, "mid": true, "new": true} {
		if _, ok := c.Get(key); ok != want {
			t.Errorf("after pruning, %s cached = %v, want %v", key, ok, want)
		}
	}
}

// TestKey: every part that decides a result is in its key.
func TestKey(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "lake")
	if err := os.WriteFile(bin, []byte("one"), 0o755); err != nil {
		t.Fatal(err)
	}
	base := Key("verify-target", "tree", "v4.29.0", bin, []string{"build", "A"}, []byte("A"))
	if base != Key("verify-target", "tree", "v4.29.0", bin, []string{"build", "A"}, []byte("A")) {
		t.Fatal("the same request has two keys")
	}
	for name, k := range map[string]string{
		"kind":      Key("verify-source", "tree", "v4.29.0", bin, []string{"build", "A"}, []byte("A")),
		"tree":      Key("verify-target", "tree2", "v4.29.0", bin, []string{"build", "A"}, []byte("A")),
		"toolchain": Key("verify-target", "tree", "v4.30.0", bin, []string{"build", "A"}, []byte("A")),
		"binary":    Key("verify-target", "tree", "v4.29.0", filepath.Join(dir, "other"), []string{"build", "A"}, []byte("A")),
		"args":      Key("verify-target", "tree", "v4.29.0", bin, []string{"exe", "A"}, []byte("A")),
		"input":     Key("verify-target", "tree", "v4.29.0", bin, []string{"build", "A"}, []byte("B")),
	} {
		if k == base {
			t.Errorf("the key does not cover the %s", name)
		}
	}
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(bin, []byte("two!"), 0o755); err != nil {
		t.Fatal(err)
	}
	if Key("verify-target", "tree", "v4.29.0", bin, []string{"build", "A"}, []byte("A")) == base {
		t.Error("a new lake binary keeps the old key")
	}
}
