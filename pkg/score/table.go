package score

import "sync"

// Table is an append-only shape table with the typical pods resolved
// against it, shared by every scheduling cycle; it is safe for concurrent
// use, and a snapshot stays valid while the table grows.
type Table struct {
	mu      sync.Mutex
	typical []Typical
	index   map[string]int
	shapes  []Shape
	classes []Class
	keys    map[string]int
}

// NewTable starts an empty table for the target workload.
func NewTable(typical []Typical) *Table {
	return &Table{typical: typical, index: map[string]int{}, keys: map[string]int{}}
}

// Add returns the index of the shape, adding it when new.
func (t *Table) Add(sh Shape) int {
	key := sh.Key()
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.index[key]; ok {
		return i
	}
	i := len(t.shapes)
	t.index[key] = i
	// Copy on write: snapshots handed out keep their own slices.
	t.shapes = append(t.shapes[:len(t.shapes):len(t.shapes)], sh)
	t.classes = NewClasses(t.typical, t.shapes)
	return i
}

// Snapshot returns the shapes and the typical pods' classes.
func (t *Table) Snapshot() ([]Shape, []Class) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.shapes, t.classes
}

// Key numbers a request's selector set (its expressions joined), for the
// devices' memo of selector results.
func (t *Table) Key(selectors string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.keys[selectors]
	if !ok {
		k = len(t.keys)
		t.keys[selectors] = k
	}
	return k
}
