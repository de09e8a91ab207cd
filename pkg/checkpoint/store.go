package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"k8s.io/klog/v2"
)

const (
	recordExt     = ".json"
	tempPrefix    = ".tmp-"
	quarantineDir = "quarantine"
	bootIDPath    = "/proc/sys/kernel/random/boot_id"
)

// Store is the set of claim records in one directory. It is safe for
// concurrent use: writes of different claims proceed in parallel; writes of
// the same claim are serialised so that memory and disk agree.
type Store struct {
	dir    string
	bootID string
	// fsync is set unless records need only survive a process crash.
	fsync bool

	mu     sync.RWMutex
	claims map[string]Claim

	locks keyedMutex
}

// Open loads the records in opts.Dir. Records of another boot are removed
// and returned in Report.Stale; corrupt or unreadable ones are moved into
// Dir/quarantine/ and reported. Only a failure to use the directory itself
// is an error.
func Open(ctx context.Context, opts Options) (*Store, Report, error) {
	logger := klog.FromContext(ctx)
	if opts.Dir == "" {
		return nil, Report{}, errors.New("open checkpoint: no directory")
	}
	bootID, err := resolveBootID(opts.BootID)
	if err != nil {
		return nil, Report{}, fmt.Errorf("open checkpoint %s: %w", opts.Dir, err)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, Report{}, fmt.Errorf("open checkpoint: %w", err)
	}
	s := &Store{dir: opts.Dir, bootID: bootID, claims: map[string]Claim{}, fsync: opts.Durability != SurviveProcessCrash}
	rep, err := s.load(logger)
	if err != nil {
		return nil, Report{}, err
	}
	logger.V(2).Info("Opened checkpoint", "dir", opts.Dir, "bootID", bootID,
		"claims", len(s.claims), "stale", len(rep.Stale), "quarantined", len(rep.Quarantined))
	return s, rep, nil
}

// Put records c, replacing any earlier record of the same claim. When it
// returns nil the record survives the crash its Options.Durability names.
func (s *Store) Put(c Claim) error {
	if err := validateClaim(c); err != nil {
		return err
	}
	c, err := normalise(c)
	if err != nil {
		return err
	}
	data, err := encodeRecord(s.bootID, c)
	if err != nil {
		return err
	}
	unlock := s.locks.lock(c.UID)
	defer unlock()
	if err := writeFileDurable(s.dir, c.UID+recordExt, data, s.fsync); err != nil {
		return fmt.Errorf("checkpoint claim %s: %w", c.UID, err)
	}
	s.mu.Lock()
	s.claims[c.UID] = c
	s.mu.Unlock()
	return nil
}

// Get returns the record of the claim with this UID. A claim not in
// memory is looked for on disk: during a rolling update another plugin
// process on the node may have prepared it after this one loaded the
// directory.
func (s *Store) Get(uid string) (Claim, bool) {
	s.mu.RLock()
	c, ok := s.claims[uid]
	s.mu.RUnlock()
	if !ok {
		return s.readThrough(uid)
	}
	return c.Clone(), true
}

// readThrough reads a record another process wrote and keeps it. A missing,
// unreadable or other-boot file is no record here: Open deals with those.
func (s *Store) readThrough(uid string) (Claim, bool) {
	if validateUID(uid) != nil {
		return Claim{}, false
	}
	unlock := s.locks.lock(uid)
	defer unlock()
	c, bootID, err := readRecord(filepath.Join(s.dir, uid+recordExt), uid)
	if err != nil || bootID != s.bootID {
		return Claim{}, false
	}
	s.mu.Lock()
	s.claims[uid] = c
	s.mu.Unlock()
	return c.Clone(), true
}

// Delete removes the record of the claim with this UID. Deleting an absent
// claim is not an error.
func (s *Store) Delete(uid string) error {
	if err := validateUID(uid); err != nil {
		return err
	}
	unlock := s.locks.lock(uid)
	defer unlock()
	if err := removeDurable(s.dir, uid+recordExt, s.fsync); err != nil {
		return fmt.Errorf("delete checkpoint of claim %s: %w", uid, err)
	}
	s.mu.Lock()
	delete(s.claims, uid)
	s.mu.Unlock()
	return nil
}

// List returns every record in the directory, sorted by UID: this
// process's and those another plugin process on the node (the other half of
// a surge rollout) has written since Open. Records another process deleted
// are dropped. Decisions about a GPU (tenancy, the first and last claim of a
// shared GPU) are taken from it, under that GPU's lock (LockGPUs), so both
// processes decide from the same records.
func (s *Store) List() []Claim {
	s.syncFromDisk()
	s.mu.RLock()
	out := make([]Claim, 0, len(s.claims))
	for _, c := range s.claims {
		out = append(out, c.Clone())
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Claim) int { return strings.Compare(a.UID, b.UID) })
	return out
}

// Holding returns the records, on disk as List reads them, with a device on
// one of the GPUs, in no particular order. It copies only those: the
// decisions prepare takes under a GPU's lock need nothing else, and a node
// holding a thousand claims must not pay for all of them at every prepare.
func (s *Store) Holding(gpuUUIDs ...string) []Claim {
	s.syncFromDisk()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Claim
	for _, c := range s.claims {
		if slices.ContainsFunc(c.Devices, func(d Device) bool { return slices.Contains(gpuUUIDs, d.GPUUUID) }) {
			out = append(out, c.Clone())
		}
	}
	return out
}

// syncFromDisk reads the records it does not know yet and forgets those no
// longer on disk. A record's devices and tenant never change after its first
// write, so a name it knows needs no re-read. On a directory it cannot read
// it keeps what it has.
func (s *Store) syncFromDisk() {
	names, err := readNames(s.dir)
	if err != nil {
		return
	}
	onDisk := make(map[string]bool, len(names))
	for _, name := range names {
		if strings.HasSuffix(name, recordExt) && !strings.HasPrefix(name, tempPrefix) {
			onDisk[strings.TrimSuffix(name, recordExt)] = true
		}
	}
	s.mu.RLock()
	var unknown, vanished []string
	for uid := range onDisk {
		if _, ok := s.claims[uid]; !ok {
			unknown = append(unknown, uid)
		}
	}
	for uid := range s.claims {
		if !onDisk[uid] {
			vanished = append(vanished, uid)
		}
	}
	s.mu.RUnlock()
	for _, uid := range unknown {
		s.readThrough(uid)
	}
	for _, uid := range vanished {
		s.forgetIfGone(uid)
	}
}

// readNames lists a directory's names unsorted (cheaper than os.ReadDir).
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// forgetIfGone drops the claim from memory when its file is gone; under the
// claim's lock, so a Put in flight is not undone.
func (s *Store) forgetIfGone(uid string) {
	unlock := s.locks.lock(uid)
	defer unlock()
	if _, err := os.Stat(filepath.Join(s.dir, uid+recordExt)); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	s.mu.Lock()
	delete(s.claims, uid)
	s.mu.Unlock()
}

// BootID is the boot id records are written under.
func (s *Store) BootID() string { return s.bootID }

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// normalise returns a copy of c whose configs are compacted as they will be
// on disk, so that Get returns the same before and after a restart.
func normalise(c Claim) (Claim, error) {
	c = c.Clone()
	for i, d := range c.Devices {
		if len(d.Config) == 0 {
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, d.Config); err != nil {
			return Claim{}, fmt.Errorf("%w: claim %s: devices[%d].config: %w", ErrInvalidClaim, c.UID, i, err)
		}
		c.Devices[i].Config = buf.Bytes()
	}
	return c, nil
}

func resolveBootID(id string) (string, error) {
	if id != "" {
		return id, nil
	}
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	id = strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("read boot id: %s is empty", bootIDPath)
	}
	return id, nil
}

func validateClaim(c Claim) error {
	if err := validateUID(c.UID); err != nil {
		return err
	}
	switch c.Phase {
	case PhasePrepareStarted, PhasePrepared, PhaseUnprepareStarted:
	default:
		return fmt.Errorf("%w: claim %s: phase %q: want %s, %s or %s", ErrInvalidClaim, c.UID, c.Phase,
			PhasePrepareStarted, PhasePrepared, PhaseUnprepareStarted)
	}
	return nil
}

// validateUID keeps the UID usable as a file name in Dir: Kubernetes UIDs
// are UUIDs, so anything else is refused rather than escaped.
func validateUID(uid string) error {
	if uid == "" {
		return fmt.Errorf("%w: empty uid", ErrInvalidClaim)
	}
	if uid == "." || uid == ".." || strings.HasPrefix(uid, ".") {
		return fmt.Errorf("%w: uid %q", ErrInvalidClaim, uid)
	}
	for _, r := range uid {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("%w: uid %q: character %q not allowed", ErrInvalidClaim, uid, r)
		}
	}
	return nil
}

// keyedMutex is a lock per key that frees its entry when unused.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
