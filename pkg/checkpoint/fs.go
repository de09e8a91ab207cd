package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tierra-gpu/tierra/internal/atomicfile"
)

// writeFileDurable replaces dir/name with data so that after a crash the
// file holds either the old or the new content: write a temp file, fsync
// it, rename it over the target, fsync the directory. Without sync, only
// a process crash is survived (see SurviveProcessCrash).
func writeFileDurable(dir, name string, data []byte, sync bool) error {
	return atomicfile.WriteTemp(filepath.Join(dir, name), tempPrefix+name+"-*", data, sync)
}

// removeDurable removes dir/name, if present, and syncs the directory
// when sync is set.
func removeDurable(dir, name string, sync bool) error {
	err := os.Remove(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	if !sync {
		return nil
	}
	return atomicfile.SyncDir(dir)
}
