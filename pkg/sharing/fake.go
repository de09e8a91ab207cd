package sharing

import (
	"context"
	"slices"
	"sync"
)

// FakeRunner records the commands it is asked to run and runs none.
type FakeRunner struct {
	mu   sync.Mutex
	cmds []Cmd
	// Err, when set, is returned by every Run.
	Err error
}

var _ Runner = (*FakeRunner)(nil)

// Run records the command.
func (f *FakeRunner) Run(_ context.Context, cmd Cmd) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, cmd)
	return f.Err
}

// Commands returns the commands run so far.
func (f *FakeRunner) Commands() []Cmd {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}
