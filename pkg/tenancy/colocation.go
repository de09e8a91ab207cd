package tenancy

import (
	"errors"
	"fmt"
)

var (
	// ErrCrossTenant: the GPU holds a soft-shared claim of another tenant.
	ErrCrossTenant = errors.New("GPU holds a soft-shared claim of another tenant")
	// ErrGPUBusy: the GPU is held in a way the new claim cannot join (a
	// whole-GPU claim, MIG beside non-MIG use, another sharing strategy):
	// the published shape changed under live claims, or an allocation the
	// scheduler should not have made.
	ErrGPUBusy = errors.New("GPU is in use by a conflicting claim")
)

// Mode is how a claim holds a physical GPU.
type Mode string

const (
	// ModeWhole: the whole GPU, as one exclusive device.
	ModeWhole Mode = "Whole"
	// ModeMIG: one MIG instance of the GPU; hardware-isolated.
	ModeMIG Mode = "MIG"
	// ModeShared: a share of a soft-shared GPU (time-slicing or MPS).
	ModeShared Mode = "Shared"
)

// Use is one claim's use of a GPU.
type Use struct {
	// Claim is "namespace/name".
	Claim  string
	Tenant string
	Mode   Mode
	// Strategy is the sharing strategy of a ModeShared use
	// (TimeSlicing or MPS).
	Strategy string
}

// CheckGPU refuses use of gpu when a holder's use conflicts with it:
//   - a soft-shared holder of another tenant: ErrCrossTenant, whatever the
//     new claim's mode (a GPU that serves one tenant's soft-shared claims
//     serves no other tenant until they end);
//   - a whole-GPU holder, or any holder of a whole-GPU claim: ErrGPUBusy;
//   - MIG beside non-MIG use, or soft sharing under another strategy:
//     ErrGPUBusy.
//
// MIG instances of different tenants may share a GPU (the scheduler's
// counters keep their placements apart), and so may one tenant's claims
// under one sharing strategy. The error names both claims, both tenants
// and the GPU.
func CheckGPU(gpu string, use Use, holders []Use) error {
	for _, h := range holders {
		if h.Mode == ModeShared && h.Tenant != use.Tenant {
			return fmt.Errorf("claim %s of tenant %q cannot use GPU %s: claim %s of tenant %q soft-shares it (%s): %w",
				use.Claim, Display(use.Tenant), gpu, h.Claim, Display(h.Tenant), h.Strategy, ErrCrossTenant)
		}
	}
	for _, h := range holders {
		if reason := conflict(use, h); reason != "" {
			return fmt.Errorf("claim %s (%s) cannot use GPU %s: claim %s of tenant %q holds it %s: %w",
				use.Claim, describe(use), gpu, h.Claim, Display(h.Tenant), reason, ErrGPUBusy)
		}
	}
	return nil
}

// conflict says why use cannot join holder h on one GPU, or "".
func conflict(use, h Use) string {
	switch {
	case h.Mode == ModeWhole:
		return "whole"
	case use.Mode == ModeWhole:
		return "as " + describe(h)
	case use.Mode != h.Mode:
		return "as " + describe(h)
	case use.Mode == ModeShared && use.Strategy != h.Strategy:
		return "under " + h.Strategy
	}
	return ""
}

func describe(u Use) string {
	if u.Mode == ModeShared {
		return fmt.Sprintf("%s, %s", u.Mode, u.Strategy)
	}
	return string(u.Mode)
}
