package prepare

import (
	"slices"
	"sync"
)

// gpuLocks hands out one mutex per GPU UUID, so claims on different GPUs
// prepare in parallel and claims on one GPU take turns.
type gpuLocks struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// lock locks the GPUs in sorted order (no deadlock between claims that
// span several GPUs) and returns the function that unlocks them.
func (l *gpuLocks) lock(uuids []string) func() {
	uuids = slices.Clone(uuids)
	slices.Sort(uuids)
	uuids = slices.Compact(uuids)
	held := make([]*sync.Mutex, 0, len(uuids))
	for _, u := range uuids {
		m := l.get(u)
		m.Lock()
		held = append(held, m)
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].Unlock()
		}
	}
}

func (l *gpuLocks) get(uuid string) *sync.Mutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.locks == nil {
		l.locks = map[string]*sync.Mutex{}
	}
	m, ok := l.locks[uuid]
	if !ok {
		m = &sync.Mutex{}
		l.locks[uuid] = m
	}
	return m
}
