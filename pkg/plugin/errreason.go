package plugin

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/sharing"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
)

// ErrorReason is the reason label (metrics.Reason…) of a failed prepare or
// unprepare; "" for nil. Sentinels decide first: a tenancy refusal or a
// config the node cannot serve is that, whatever wrapped it. Then the
// collaborator that failed, as the plugin marks its errors (markReason:
// the checkpoint store, the GPUs, the sharer, the namespace lookup), then
// the packages' own sentinels and API status errors.
func ErrorReason(err error) string {
	var marked *reasonError
	var status apierrors.APIStatus
	switch {
	case err == nil:
		return ""
	case isAny(err, prepare.ErrTierNotAllowed, tenancy.ErrCrossTenant, tenancy.ErrGPUBusy):
		return metrics.ReasonTenancy
	case isAny(err, prepare.ErrInvalidConfig, prepare.ErrNotAllocated, prepare.ErrUnknownDevice, prepare.ErrForeignDevice,
		sharing.ErrMPSLimitsDiffer):
		return metrics.ReasonConfig
	case errors.As(err, &marked):
		return marked.reason
	case isAny(err, checkpoint.ErrCorrupt, checkpoint.ErrUnsupportedVersion, checkpoint.ErrInvalidClaim):
		return metrics.ReasonCheckpoint
	case isAny(err, nvgpu.ErrGPULost, nvgpu.ErrNotFound, nvgpu.ErrNotSupported, nvgpu.ErrMIGDisabled, nvgpu.ErrInvalidPlacement,
		nvgpu.ErrPlacementOverlap, nvgpu.ErrInstanceBusy, nvgpu.ErrResetRequired, nvgpu.ErrLibraryNotFound):
		return metrics.ReasonHardware
	case errors.As(err, &status):
		return metrics.ReasonAPI
	}
	return metrics.ReasonOther
}

func isAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// reasonError marks an error with the reason of the collaborator that
// returned it. It says nothing more than the error it wraps.
type reasonError struct {
	err    error
	reason string
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// markReason marks a non-nil err with reason.
func markReason(err error, reason string) error {
	if err == nil {
		return nil
	}
	return &reasonError{err: err, reason: reason}
}

// reasonStore marks the checkpoint store's errors. Embedding keeps every
// other method of the store (Get, List, …) as it is.
type reasonStore struct{ *checkpoint.Store }

func (s reasonStore) Put(c checkpoint.Claim) error {
	return markReason(s.Store.Put(c), metrics.ReasonCheckpoint)
}

func (s reasonStore) Delete(uid string) error {
	return markReason(s.Store.Delete(uid), metrics.ReasonCheckpoint)
}

func (s reasonStore) LockGPUs(uuids []string) (func(), error) {
	release, err := s.Store.LockGPUs(uuids)
	return release, markReason(err, metrics.ReasonCheckpoint)
}

// reasonHardware marks the GPUs' errors; embedding keeps what prepare
// discovers by type assertion (Machine, to find a leaked MIG instance).
type reasonHardware struct{ nvgpu.Interface }

func (h reasonHardware) CreateMIGInstance(ctx context.Context, opts nvgpu.CreateMIGOptions) (inventory.MIGInstance, error) {
	inst, err := h.Interface.CreateMIGInstance(ctx, opts)
	return inst, markReason(err, metrics.ReasonHardware)
}

func (h reasonHardware) DestroyComputeInstance(ctx context.Context, ref nvgpu.ComputeInstanceRef) error {
	return markReason(h.Interface.DestroyComputeInstance(ctx, ref), metrics.ReasonHardware)
}

func (h reasonHardware) DestroyGPUInstance(ctx context.Context, gpuUUID string, gpuInstanceID int) error {
	return markReason(h.Interface.DestroyGPUInstance(ctx, gpuUUID, gpuInstanceID), metrics.ReasonHardware)
}

func (h reasonHardware) SetComputeMode(ctx context.Context, gpuUUID string, mode inventory.ComputeMode) error {
	return markReason(h.Interface.SetComputeMode(ctx, gpuUUID, mode), metrics.ReasonHardware)
}

// reasonSharer marks time-slicing and MPS errors as hardware; embedding
// keeps the daemon methods prepare's reconcile discovers.
type reasonSharer struct{ *sharing.Manager }

func (s reasonSharer) Share(ctx context.Context, gpuUUID string, sh *v1alpha1.GpuSharing, first bool) (sharing.Edits, error) {
	edits, err := s.Manager.Share(ctx, gpuUUID, sh, first)
	return edits, markReason(err, metrics.ReasonHardware)
}

func (s reasonSharer) Unshare(ctx context.Context, gpuUUID string, strategy v1alpha1.SharingStrategy, last bool) error {
	return markReason(s.Manager.Unshare(ctx, gpuUUID, strategy, last), metrics.ReasonHardware)
}

var (
	_ prepare.Store     = reasonStore{}
	_ prepare.GPULocker = reasonStore{}
	_ prepare.Hardware  = reasonHardware{}
	_ prepare.Sharer    = reasonSharer{}
)
