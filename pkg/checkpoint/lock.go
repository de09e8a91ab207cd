package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// LockFile is the name of the state lock inside a state directory.
const LockFile = "lock"

// StateLock is an flock(2) on a state directory, shared between every
// process that prepares claims from it (two plugin pods of one node during
// a DaemonSet rolling update). Prepare and unprepare hold it shared, so
// any number of them run at once, in one process or two; the startup
// reconcile holds it exclusive, so it never sees, and never rolls back, a
// claim another process is half-way through.
//
// Inside one process the shared holds are counted: the flock is taken by
// the first holder and released by the last, since flock(2) belongs to the
// open file, not to a goroutine.
type StateLock struct {
	f *os.File

	mu     sync.Mutex
	shared int
}

// OpenStateLock opens (creating) dir/lock. Each StateLock has its own open
// file, so two in one process exclude each other as two processes do.
func OpenStateLock(dir string) (*StateLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	return &StateLock{f: f}, nil
}

// Exclusive blocks until no process holds the lock and returns the
// function that releases it.
func (l *StateLock) Exclusive() (func() error, error) {
	if err := l.flock(syscall.LOCK_EX); err != nil {
		return nil, err
	}
	return func() error { return l.flock(syscall.LOCK_UN) }, nil
}

// Shared blocks while another process holds the lock exclusive and
// returns the function that releases this hold.
func (l *StateLock) Shared() (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shared == 0 {
		if err := l.flock(syscall.LOCK_SH); err != nil {
			return nil, err
		}
	}
	l.shared++
	var once sync.Once
	return func() { once.Do(l.releaseShared) }, nil
}

func (l *StateLock) releaseShared() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shared--
	if l.shared == 0 {
		// Unlocking an flock we hold cannot fail but on a closed file.
		_ = l.flock(syscall.LOCK_UN)
	}
}

// Close releases the lock and closes the file.
func (l *StateLock) Close() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("state lock: %w", err)
	}
	return nil
}

func (l *StateLock) flock(how int) error { return flockRetry(l.f, how) }

// gpuLockDir holds one lock file per GPU inside a state directory.
const gpuLockDir = "gpus"

// LockGPUs takes an exclusive flock(2) on one file per GPU (dir/gpus/<uuid>),
// in sorted order, and returns the function that releases them. Every plugin
// process of the node takes them around a decision about a GPU, so two
// processes of a surge rollout never decide about one GPU at once. Each call
// opens its own files, so two holders in one process exclude each other too.
func (s *Store) LockGPUs(uuids []string) (func(), error) {
	uuids = slices.Clone(uuids)
	slices.Sort(uuids)
	uuids = slices.Compact(uuids)
	dir := filepath.Join(s.dir, gpuLockDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("GPU locks: %w", err)
	}
	held := make([]*os.File, 0, len(uuids))
	release := func() {
		for _, f := range slices.Backward(held) {
			_ = f.Close() // closing the file releases its flock
		}
	}
	for _, uuid := range uuids {
		if err := validateUID(uuid); err != nil {
			release()
			return nil, fmt.Errorf("GPU lock %q: %w", uuid, err)
		}
		f, err := os.OpenFile(filepath.Join(dir, uuid), os.O_RDWR|os.O_CREATE, 0o600)
		if err == nil {
			err = flockRetry(f, syscall.LOCK_EX)
		}
		if err != nil {
			if f != nil {
				_ = f.Close()
			}
			release()
			return nil, fmt.Errorf("GPU lock %s: %w", uuid, err)
		}
		held = append(held, f)
	}
	return release, nil
}

func flockRetry(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("flock %s: %w", f.Name(), err)
		}
		return nil
	}
}
