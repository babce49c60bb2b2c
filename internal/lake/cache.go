package lake

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/quantapix/hqd/internal/atomicfile"
)

// Cache keeps the events of finished runs by key (SPEC §6.3), so an
// identical request replays them without starting a process.
type Cache struct{ dir string }

// Cached is a recorded run: its events as hqd encoded them when they
// happened (each an Event's JSON), and its done event.
type Cached struct {
	Events []json.RawMessage `json:"events"`
	Done   Event             `json:"done"`
}

// EventKind is the kind of an encoded event, which is its SSE type.
func EventKind(raw []byte) string {
	var e struct {
		Kind string `json:"kind"`
	}
	_ = json.Unmarshal(raw, &e) // an event hqd encoded itself always has one
	return e.Kind
}

// NewCache keeps results in dir.
func NewCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("result cache %s: %w", dir, err)
	}
	return &Cache{dir: dir}, nil
}

func (c *Cache) file(key string) string { return filepath.Join(c.dir, key+".json") }

// Get returns the recorded run for key, if any.
func (c *Cache) Get(key string) (*Cached, bool) {
	b, err := os.ReadFile(c.file(key))
	if err != nil {
		return nil, false
	}
	var r Cached
	if json.Unmarshal(b, &r) != nil {
		return nil, false
	}
	return &r, true
}

// Put records a run.
func (c *Cache) Put(key string, r *Cached) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return atomicfile.Write(c.file(key), b)
}

// Prune deletes the least recently written results until the cache holds
// at most maxBytes, so distinct submissions cannot fill the disk.
func (c *Cache) Prune(maxBytes int64) error {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	type file struct {
		name string
		size int64
		mod  int64
	}
	var files []file
	var total int64
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		files = append(files, file{e.Name(), info.Size(), info.ModTime().UnixNano()})
		total += info.Size()
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod < files[j].mod })
	for _, f := range files {
		if total <= maxBytes {
			break
		}
		if err := os.Remove(filepath.Join(c.dir, f.name)); err == nil {
			total -= f.size
		}
	}
	return nil
}

// keyVersion is part of every key: results recorded before the sandbox
// (when a job could write into the cache itself) are never trusted.
const keyVersion = "hqd-result-v3" // v3: events show project-relative paths

// Key hashes what decides a run's result: its kind, the project's tree
// state, the toolchain, the lake binary, the command line and the
// normalized input.
func Key(kind, treeState, toolchain, lakeBin string, args []string, input []byte) string {
	h := sha256.New()
	parts := [][]byte{[]byte(keyVersion), []byte(kind), []byte(treeState), []byte(toolchain), []byte(BinaryState(lakeBin)), []byte(strings.Join(args, "\x00")), input}
	for _, part := range parts {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// BinaryState names the program at path as it is now: where it resolves,
// its size and modification time (a new toolchain or stand-in is a new
// state).
func BinaryState(path string) string {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "missing:" + path
	}
	st, err := os.Stat(real)
	if err != nil {
		return "missing:" + real
	}
	return fmt.Sprintf("%s\x00%d\x00%d", real, st.Size(), st.ModTime().UnixNano())
}

// TreeState hashes a project's files by name, size and modification time
// (not their bytes: cheap enough for every request), leaving out build
// output and version control.
func TreeState(dir string) (string, error) {
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != dir && (name == ".lake" || name == ".git" || name == "lake-packages" || name == "build") {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, fmt.Sprintf("%s\x00%d\x00%d", rel, info.Size(), info.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:]), nil
}

// Toolchain is the project's lean-toolchain, or "" without one.
func Toolchain(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "lean-toolchain"))
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return strings.TrimSpace(string(b))
}
