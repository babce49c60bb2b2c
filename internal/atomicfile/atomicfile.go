// Package atomicfile writes small state files (accounts, revocations) so
// that a crash leaves either the old file or the new one, never a torn one.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces name with data: a temp file in the same folder, fsync,
// rename, fsync of the folder. The file is readable by its owner only.
func Write(name string, data []byte) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename is done; a failed folder sync only weakens durability
		d.Close()
	}
	return nil
}
