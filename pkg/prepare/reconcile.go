package prepare

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// Reconcile brings the node in line with the checkpoint at startup, before
// the kubelet is served: unfinished claims are rolled back, MIG instances
// no prepared claim owns are destroyed on the GPUs this driver publishes
// MIG devices of, and CDI specs (claim UIDs in specs) without a record are
// deleted. machine is the hardware as discovered now.
func (p *Preparer) Reconcile(ctx context.Context, machine inventory.Machine, specs []string) error {
	logger := klog.FromContext(ctx)
	var errs []error
	for _, rec := range p.opts.Store.List() {
		if rec.Phase == PhasePrepared {
			continue
		}
		logger.Info("Rolling back an unfinished claim", "claim", klog.KRef(rec.Namespace, rec.Name), "uid", rec.UID, "phase", rec.Phase)
		if err := p.undo(ctx, rec); err != nil {
			errs = append(errs, fmt.Errorf("roll back claim %s/%s: %w", rec.Namespace, rec.Name, err))
		}
	}
	owned := sets.New[string]()
	records := sets.New[string]()
	for _, rec := range p.opts.Store.List() {
		records.Insert(rec.UID)
		for _, d := range rec.Devices {
			if d.MIG != nil {
				owned.Insert(fmt.Sprintf("%s/%d", d.GPUUUID, d.MIG.GPUInstanceID))
			}
		}
	}
	for _, g := range machine.GPUs {
		if g.MIG == nil || !p.view.Load().inv.managesMIG(g.UUID) {
			continue
		}
		for _, inst := range g.MIG.Instances {
			if owned.Has(fmt.Sprintf("%s/%d", g.UUID, inst.GPUInstanceID)) {
				continue
			}
			logger.Info("Destroying a MIG instance no claim owns", "gpu", g.UUID, "gpuInstance", inst.GPUInstanceID, "profile", inst.ProfileName)
			if err := p.destroyInstance(ctx, g.UUID, inst); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, p.stopOrphanDaemons(ctx)...)
	for _, uid := range specs {
		if records.Has(uid) {
			continue
		}
		logger.Info("Deleting a CDI spec no claim owns", "uid", uid)
		if err := p.opts.CDI.Delete(uid); err != nil {
			errs = append(errs, fmt.Errorf("delete CDI spec of %s: %w", uid, err))
		}
	}
	return errors.Join(errs...)
}

// daemonStopper is a Sharer that can list and stop the MPS daemons it
// started (pkg/sharing's Manager).
type daemonStopper interface {
	MPSDaemons() ([]string, error)
	StopMPS(ctx context.Context, gpuUUID string) error
	ForgetMPS(gpuUUID string) error
}

// stopOrphanDaemons stops every MPS daemon no checkpoint record holds: a
// plugin that lost its record (an older version, a deleted state dir) must
// not leave a daemon serving a GPU that is no longer shared.
func (p *Preparer) stopOrphanDaemons(ctx context.Context) []error {
	s, ok := p.opts.Sharer.(daemonStopper)
	if !ok {
		return nil
	}
	gpus, err := s.MPSDaemons()
	if err != nil {
		return []error{err}
	}
	held := sets.New[string]()
	for _, rec := range p.opts.Store.List() {
		for _, d := range rec.Devices {
			if d.Sharing == string(v1alpha1.SharingMPS) {
				held.Insert(d.GPUUUID)
			}
		}
	}
	var errs []error
	for _, gpu := range gpus {
		if held.Has(gpu) {
			continue
		}
		logger := klog.FromContext(ctx)
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

func (p *Preparer) destroyInstance(ctx context.Context, gpu string, inst inventory.MIGInstance) error {
	for _, ci := range inst.ComputeInstances {
		ref := nvgpu.ComputeInstanceRef{GPUUUID: gpu, GPUInstanceID: inst.GPUInstanceID, ComputeInstanceID: ci.ID}
		if err := p.opts.Hardware.DestroyComputeInstance(ctx, ref); err != nil && !errors.Is(err, nvgpu.ErrNotFound) {
			return fmt.Errorf("destroy leaked compute instance %d/%d on %s: %w", inst.GPUInstanceID, ci.ID, gpu, err)
		}
	}
	if err := p.opts.Hardware.DestroyGPUInstance(ctx, gpu, inst.GPUInstanceID); err != nil && !errors.Is(err, nvgpu.ErrNotFound) {
		return fmt.Errorf("destroy leaked GPU instance %d on %s: %w", inst.GPUInstanceID, gpu, err)
	}
	return nil
}

// managesMIG reports whether the node publishes MIG devices of the GPU,
// i.e. whether this driver owns its MIG instances.
func (inv *Inventory) managesMIG(uuid string) bool {
	for _, d := range inv.devices {
		if slices.StringAttribute(d, slices.AttrParentUUID) == uuid {
			return true
		}
	}
	return false
}
