package prepare

import (
	"context"
	"fmt"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// Records returns the record of every claim prepared (or half-way) on the
// node, by any plugin process: what the plugin's periodic pass checks
// against the API.
func (p *Preparer) Records() []checkpoint.Claim { return p.opts.Store.List() }

// daemonStopper is a Sharer that can list and stop the MPS daemons it
// started (pkg/sharing's Manager).
type daemonStopper interface {
	MPSDaemons(ctx context.Context) ([]string, error)
	StopMPS(ctx context.Context, gpuUUID string) error
	ForgetMPS(gpuUUID string) error
}

// stopOrphanDaemons stops every MPS daemon no checkpoint record holds: a
// plugin that lost its record (an older version, a deleted state dir) must
// not leave a daemon serving a GPU that is no longer shared. The caller
// makes sure no record was quarantined.
func (p *Preparer) stopOrphanDaemons(ctx context.Context, records []checkpoint.Claim) []error {
	s, ok := p.opts.Sharer.(daemonStopper)
	if !ok {
		return nil
	}
	gpus, err := s.MPSDaemons(ctx)
	if err != nil {
		return []error{err}
	}
	held := sets.New[string]()
	for _, rec := range records {
		for _, d := range rec.Devices {
			if !d.AdminAccess && d.Sharing == string(v1alpha1.SharingMPS) {
				held.Insert(d.GPUUUID)
			}
		}
	}
	logger := klog.FromContext(ctx)
	var errs []error
	for _, gpu := range gpus {
		if held.Has(gpu) {
			continue
		}
		logger.Info("Stopping an MPS daemon no claim holds", "gpu", gpu)
		if err := s.StopMPS(ctx, gpu); err != nil {
			// Most likely none runs (a start that crashed, a quit that
			// already ran): forget it rather than retry at every start.
			logger.Error(err, "MPS daemon did not quit; forgetting it", "gpu", gpu)
			if err := s.ForgetMPS(gpu); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// resetOrphanGPUs resets the GPUs this node publishes whole (not in MIG
// mode) that no record holds: a compute mode other than Default goes back
// to Default (a claim whose restore never ran, or whose record was lost),
// and a time-sliced shared GPU gets the default time-slice back (it cannot
// be read, so it is reset whatever it is). The caller makes sure no record
// was quarantined.
func (p *Preparer) resetOrphanGPUs(ctx context.Context, machine inventory.Machine, records []checkpoint.Claim) []error {
	logger := klog.FromContext(ctx)
	held := sets.New[string]()
	for _, rec := range records {
		for _, d := range rec.Devices {
			if !d.AdminAccess {
				held.Insert(d.GPUUUID)
			}
		}
	}
	inv := p.view.Load().inv
	var errs []error
	for _, g := range machine.GPUs {
		if g.MIGEnabled || held.Has(g.UUID) {
			continue
		}
		dev, ok := inv.wholeDevice(g.UUID)
		if !ok {
			continue // not published: not Tierra's to reset
		}
		if g.ComputeMode != "" && g.ComputeMode != inventory.ComputeModeDefault {
			logger.Info("Resetting the compute mode of a GPU no claim holds", "gpu", g.UUID, "computeMode", g.ComputeMode)
			if err := p.setMode(ctx, g.UUID, inventory.ComputeModeDefault); err != nil && !gone(err) {
				errs = append(errs, fmt.Errorf("reset compute mode of a GPU no claim holds: %w", err))
			}
		}
		if p.opts.Sharer != nil && timeSliced(dev) {
			logger.V(2).Info("Resetting the time-slice of a shared GPU no claim holds", "gpu", g.UUID)
			if err := p.opts.Sharer.Unshare(ctx, g.UUID, v1alpha1.SharingTimeSlicing, true); err != nil {
				errs = append(errs, fmt.Errorf("reset time-slice of %s, which no claim holds: %w", g.UUID, err))
			}
		}
	}
	return errs
}

// wholeDevice is the published device of the whole GPU (exclusive or
// shared), if the node publishes one.
func (inv *NodePool) wholeDevice(uuid string) (resourceapi.Device, bool) {
	for _, d := range inv.devices {
		if slices.StringAttribute(d, slices.AttrMIGProfile) == "" && slices.StringAttribute(d, slices.AttrUUID) == uuid {
			return d, true
		}
	}
	return resourceapi.Device{}, false
}

// timeSliced reports whether the device is a GPU many claims time-slice.
func timeSliced(d resourceapi.Device) bool {
	return d.AllowMultipleAllocations != nil && *d.AllowMultipleAllocations &&
		slices.StringAttribute(d, slices.AttrSharing) == string(v1alpha1.SharingTimeSlicing)
}
