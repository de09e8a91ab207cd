//go:build !cgo

package nvgpu

import (
	"context"
	"fmt"
)

// Without cgo there is neither NVML nor go-nvml's mock servers: this stub
// keeps importers building with CGO_ENABLED=0 and fails at New, clearly.

func noCgo() error {
	return fmt.Errorf("this binary was built with CGO_ENABLED=0, so it can load neither NVML nor a fake machine; "+
		"rebuild with CGO_ENABLED=1: %w", ErrNotSupported)
}

func newReal(context.Context, Options) (Interface, error) { return nil, noCgo() }

// Fake is only available in cgo builds.
type Fake struct{ Interface }

// NewFake fails: fake machines need cgo.
func NewFake(context.Context, string, Options) (*Fake, error) { return nil, noCgo() }
