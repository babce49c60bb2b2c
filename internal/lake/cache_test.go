package lake

import (
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
		if err := c.Put(key, &Cached{Events: []Event{{"msg": strings.Repeat("x", 1000)}}, Done: Event{}}); err != nil {
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
