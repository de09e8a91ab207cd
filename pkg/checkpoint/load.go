package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/tierra-gpu/tierra/internal/atomicfile"
)

// load reads every record in the directory into s.claims. It removes
// leftovers of interrupted writes, removes and reports records of another
// boot, and moves aside records that cannot be trusted.
func (s *Store) load(logger logr.Logger) (Report, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return Report{}, fmt.Errorf("open checkpoint: %w", err)
	}
	var rep Report
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == quarantineDir:
			continue
		case strings.HasPrefix(name, tempPrefix):
			// An interrupted write: the rename never happened, so the
			// record it was replacing (if any) is still intact.
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
				logger.Error(err, "Could not remove leftover checkpoint temp file", "file", name)
			}
			continue
		case !strings.HasSuffix(name, recordExt):
			continue
		}
		s.loadOne(logger, name, &rep)
	}
	return rep, nil
}

func (s *Store) loadOne(logger logr.Logger, name string, rep *Report) {
	path := filepath.Join(s.dir, name)
	c, bootID, err := readRecord(path, strings.TrimSuffix(name, recordExt))
	if err != nil {
		s.quarantine(logger, name, err, rep)
		return
	}
	if bootID != s.bootID {
		if err := removeDurable(s.dir, name, true); err != nil {
			// Keep it: reporting it stale while it stays on disk would
			// report it again on the next start, which is harmless.
			logger.Error(err, "Could not remove stale checkpoint record", "file", name)
		}
		logger.V(2).Info("Checkpoint record is from another boot", "claimUID", c.UID, "bootID", bootID)
		rep.Stale = append(rep.Stale, c)
		return
	}
	s.claims[c.UID] = c
}

func readRecord(path, wantUID string) (Claim, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Claim{}, "", fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	bootID, c, err := decodeRecord(data)
	if err != nil {
		return Claim{}, "", err
	}
	if c.UID != wantUID {
		return Claim{}, "", fmt.Errorf("%w: record of claim %q in file of claim %q", ErrCorrupt, c.UID, wantUID)
	}
	return c, bootID, nil
}

// quarantine moves a record that cannot be used into Dir/quarantine/ so
// that it is neither lost nor read again.
func (s *Store) quarantine(logger logr.Logger, name string, cause error, rep *Report) {
	src := filepath.Join(s.dir, name)
	cause = fmt.Errorf("checkpoint record %s: %w", src, cause)
	qdir := filepath.Join(s.dir, quarantineDir)
	dst := filepath.Join(qdir, name+"."+time.Now().UTC().Format("20060102T150405.000000000Z"))
	err := os.MkdirAll(qdir, 0o700)
	if err == nil {
		err = os.Rename(src, dst)
	}
	if err == nil {
		err = atomicfile.SyncDir(s.dir)
	}
	if err != nil {
		err = fmt.Errorf("quarantine %s: %w", src, err)
		rep.Problems = append(rep.Problems, errors.Join(cause, err))
		logger.Error(err, "Could not move aside bad checkpoint record", "reason", cause.Error())
		return
	}
	rep.Problems = append(rep.Problems, cause)
	rep.Quarantined = append(rep.Quarantined, dst)
	logger.Error(cause, "Moved aside bad checkpoint record", "quarantinedAs", dst)
}
