// Package atomicfile replaces a file so that a reader sees either its old
// content or its new one, never a part: a temporary file in the same
// directory is written, closed and renamed over the target.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data. The temporary file is hidden
// ("."+base+".tmp-*"), so a reader that skips dot files never sees it, and
// it is removed on any failure. With sync set, the file is fsynced before
// the rename and the directory after it, so the new content also survives
// a machine crash; without it only a process crash is survived.
func Write(path string, data []byte, sync bool) error {
	return WriteTemp(path, "."+filepath.Base(path)+".tmp-*", data, sync)
}

// WriteTemp is Write with the temporary file named by pattern (as
// os.CreateTemp takes it), for a caller that finds and removes the
// temporary files a crash left.
func WriteTemp(path, pattern string, data []byte, sync bool) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", tmp.Name(), err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	if !sync {
		return nil
	}
	return SyncDir(dir)
}

// SyncDir fsyncs dir, so that a rename or removal in it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
