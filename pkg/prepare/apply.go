package prepare

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/cdi"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/sharing"
)

// Device nodes every container that uses a GPU needs.
var commonDeviceNodes = []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"}

// apply changes the hardware device by device, checkpointing each change
// before the next, then writes the CDI spec and checkpoints Prepared.
func (p *Preparer) apply(ctx context.Context, plan ClaimPlan, rec *checkpoint.Claim) error {
	cdiDevices := make([]cdi.Device, 0, len(plan.Devices))
	for i, d := range plan.Devices {
		cd, err := p.applyDevice(ctx, d, rec, i)
		if err != nil {
			return fmt.Errorf("request %q device %s: %w", d.Request, d.Device, err)
		}
		cdiDevices = append(cdiDevices, cd)
	}
	t := p.start()
	ids, err := p.opts.CDI.Write(rec.UID, cdiDevices)
	p.done(StepCDI, t)
	if err != nil {
		return fmt.Errorf("write CDI spec: %w", err)
	}
	hit(FPPrepareCDIWritten)
	if len(ids) != len(rec.Devices) {
		return fmt.Errorf("write CDI spec: %d IDs for %d devices", len(ids), len(rec.Devices))
	}
	for i := range rec.Devices {
		rec.Devices[i].CDIDeviceIDs = []string{ids[i]}
	}
	rec.Phase = checkpoint.PhasePrepared
	if err := p.put(*rec); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func (p *Preparer) applyDevice(ctx context.Context, d DevicePlan, rec *checkpoint.Claim, i int) (cdi.Device, error) {
	cd := cdi.Device{
		Name:        cdiName(d.Request, d.Device),
		DeviceNodes: append([]string{fmt.Sprintf("/dev/nvidia%d", d.GPU.Minor)}, commonDeviceNodes...),
		Env:         []string{"NVIDIA_VISIBLE_DEVICES=" + d.GPU.UUID},
	}
	switch {
	case d.AdminAccess:
		// Monitoring: the GPU's device nodes, nothing changed on it (no
		// MIG instance, compute mode or sharing).
	case d.MIG != nil:
		t := p.start()
		mig, err := p.opts.Hardware.CreateMIGInstance(ctx, nvgpu.CreateMIGOptions{GPUUUID: d.GPU.UUID, Profile: d.MIG.Profile, Placement: d.MIG.Placement})
		p.done(StepNVML, t)
		if err != nil {
			// A create can fail after the instance exists (a state write
			// behind it, a driver error after the GPU instance): record
			// what is there, so that undo destroys it.
			if leaked, ok := p.leakedInstance(ctx, d.GPU.UUID, *rec.Devices[i].PlannedMIG, rec.UID); ok {
				rec.Devices[i].MIG = &leaked
			}
			return cdi.Device{}, fmt.Errorf("create MIG instance %s at %s on %s: %w", d.MIG.Profile, d.MIG.Placement, d.GPU.UUID, err)
		}
		hit(FPPrepareMIGCreated)
		inst := recordedInstance(mig)
		inst.Profile, inst.Placement = d.MIG.Profile, d.MIG.Placement
		rec.Devices[i].MIG = &inst
		if err := p.put(*rec); err != nil {
			return cdi.Device{}, fmt.Errorf("checkpoint MIG instance: %w", err)
		}
		hit(FPPrepareMIGRecorded)
		caps, err := p.opts.Caps.MIGCaps(d.GPU, inst.GPUInstanceID, inst.ComputeInstanceID)
		if err != nil {
			return cdi.Device{}, fmt.Errorf("MIG capability devices: %w", err)
		}
		cd.DeviceNodes = append(cd.DeviceNodes, caps...)
		cd.Env = []string{"NVIDIA_VISIBLE_DEVICES=" + inst.UUID}
	case d.ExclusiveProcess():
		// The PrepareStarted record already holds the mode to restore.
		hit(FPPrepareModeRecorded)
		if err := p.setMode(ctx, d.GPU.UUID, inventory.ComputeModeExclusiveProcess); err != nil {
			return cdi.Device{}, err
		}
		hit(FPPrepareModeSet)
	default:
		edits, err := p.share(ctx, d, rec.UID)
		if err != nil {
			return cdi.Device{}, err
		}
		hit(FPPrepareShared)
		cd.Env = append(cd.Env, edits.Env...)
		for _, m := range edits.Mounts {
			cd.Mounts = append(cd.Mounts, cdi.Mount{HostPath: m.HostPath, ContainerPath: m.ContainerPath})
		}
	}
	return cd, nil
}

// machineReader is Hardware that can read the live MIG instances
// (pkg/nvgpu's Interface).
type machineReader interface {
	Machine(ctx context.Context) (inventory.Machine, error)
}

// leakedInstance finds a live instance of the planned profile at the planned
// placement that no other claim's record owns: one that a failed or
// interrupted create of claim uid left behind. The caller holds the GPU's
// lock. An instance another record owns, or one of another profile, is
// never taken.
func (p *Preparer) leakedInstance(ctx context.Context, gpu string, planned checkpoint.PlannedMIG, uid string) (checkpoint.MIGInstance, bool) {
	hw, ok := p.opts.Hardware.(machineReader)
	if !ok {
		return checkpoint.MIGInstance{}, false
	}
	m, err := hw.Machine(ctx)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Read MIG instances to look for a leaked one", "gpu", gpu)
		return checkpoint.MIGInstance{}, false
	}
	owned := map[int]bool{}
	for _, r := range p.opts.Store.Holding(gpu) {
		for _, d := range r.Devices {
			if r.UID != uid && d.GPUUUID == gpu && d.MIG != nil {
				owned[d.MIG.GPUInstanceID] = true
			}
		}
	}
	return plannedInstance(m, gpu, planned, func(id int) bool { return owned[id] })
}

// share sets up time-slicing or MPS; the first claim on the GPU starts it.
// Without a Sharer the strategy is only recorded.
func (p *Preparer) share(ctx context.Context, d DevicePlan, uid string) (sharing.Edits, error) {
	if p.opts.Sharer == nil {
		klog.FromContext(ctx).V(4).Info("Soft-shared device recorded, no Sharer", "device", d.Device, "sharing", d.Sharing())
		return sharing.Edits{}, nil
	}
	first := !p.othersShare(d.GPU.UUID, uid)
	t := p.start()
	edits, err := p.opts.Sharer.Share(ctx, d.GPU.UUID, d.Config.Sharing, first)
	p.done(StepSharing, t)
	if err != nil {
		return sharing.Edits{}, fmt.Errorf("set up %s on %s: %w", d.Sharing(), d.GPU.UUID, err)
	}
	return edits, nil
}

// othersShare reports whether a claim other than uid soft-shares the GPU.
// The caller holds the GPU's lock.
func (p *Preparer) othersShare(gpu, uid string) bool {
	for _, r := range p.opts.Store.Holding(gpu) {
		if r.UID != uid && holdsSoftShared(r, gpu) {
			return true
		}
	}
	return false
}

// undo reverses whatever the record says was done, last device first, then
// deletes the CDI spec and the record. Instances already gone are fine.
// On error the record stays, marked UnprepareStarted, for a retry.
func (p *Preparer) undo(ctx context.Context, rec checkpoint.Claim) error {
	rec.Phase = checkpoint.PhaseUnprepareStarted
	// A failed write (a full disk) must not keep the side effects: the
	// record on disk still says what to undo, and undoing twice is safe,
	// so undo goes on and the record stays for the retry.
	if err := p.put(rec); err != nil {
		klog.FromContext(ctx).Error(err, "Could not record UnprepareStarted; undoing anyway")
	}
	hit(FPUnprepareStarted)
	var errs []error
	for _, d := range slices.Backward(rec.Devices) {
		if err := p.undoDevice(ctx, rec.UID, d); err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", d.Device, err))
		}
		hit(FPUnprepareDeviceUndone)
	}
	t := p.start()
	if err := p.opts.CDI.Delete(rec.UID); err != nil {
		errs = append(errs, fmt.Errorf("delete CDI spec: %w", err))
	}
	p.done(StepCDI, t)
	hit(FPUnprepareCDIDeleted)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	t = p.start()
	if err := p.opts.Store.Delete(rec.UID); err != nil {
		return fmt.Errorf("delete checkpoint record: %w", err)
	}
	p.done(StepCheckpoint, t)
	hit(FPUnprepareDone)
	return nil
}

func (p *Preparer) undoDevice(ctx context.Context, uid string, d checkpoint.Device) error {
	if d.AdminAccess {
		return nil // prepare changed nothing for it
	}
	if p.opts.Sharer != nil && d.Sharing != string(v1alpha1.SharingExclusive) {
		last := !p.othersShare(d.GPUUUID, uid)
		// Not fatal: a failed prepare may never have started what this
		// stops. Unless the context ended: then the stop may never have
		// run, and the record must stay so that a retry (the kubelet's, or
		// the next start's reconcile) stops the daemon.
		if err := p.opts.Sharer.Unshare(ctx, d.GPUUUID, v1alpha1.SharingStrategy(d.Sharing), last); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("undo %s on %s: %w", d.Sharing, d.GPUUUID, errors.Join(err, ctx.Err()))
			}
			klog.FromContext(ctx).Error(err, "Undo soft sharing", "gpu", d.GPUUUID, "sharing", d.Sharing)
		}
	}
	if d.MIG != nil {
		ref := nvgpu.ComputeInstanceRef{GPUUUID: d.GPUUUID, GPUInstanceID: d.MIG.GPUInstanceID, ComputeInstanceID: d.MIG.ComputeInstanceID}
		defer p.done(StepNVML, p.start())
		if err := p.opts.Hardware.DestroyComputeInstance(ctx, ref); err != nil && !gone(err) {
			return fmt.Errorf("destroy compute instance %d/%d on %s: %w", ref.GPUInstanceID, ref.ComputeInstanceID, d.GPUUUID, err)
		}
		hit(FPUnprepareCIDestroyed)
		if err := p.opts.Hardware.DestroyGPUInstance(ctx, d.GPUUUID, d.MIG.GPUInstanceID); err != nil && !gone(err) {
			return fmt.Errorf("destroy GPU instance %d on %s: %w", d.MIG.GPUInstanceID, d.GPUUUID, err)
		}
		hit(FPUnprepareGIDestroyed)
	}
	if d.PreviousComputeMode != "" {
		if err := p.setMode(ctx, d.GPUUUID, inventory.ComputeMode(d.PreviousComputeMode)); err != nil && !gone(err) {
			return err
		}
		hit(FPUnprepareModeRestored)
	}
	return nil
}

// gone reports an undo target that no longer exists: the instance is
// already destroyed, or the whole GPU is lost (fallen off the bus), which
// takes its instances and compute mode with it. Either way there is nothing
// left to undo, and a dead GPU must not keep its pods from terminating.
func gone(err error) bool {
	return errors.Is(err, nvgpu.ErrNotFound) || errors.Is(err, nvgpu.ErrGPULost)
}

func (p *Preparer) mode(uuid string) inventory.ComputeMode {
	p.modesMu.Lock()
	defer p.modesMu.Unlock()
	if m, ok := p.modes[uuid]; ok && m != "" {
		return m
	}
	return inventory.ComputeModeDefault
}

func (p *Preparer) setMode(ctx context.Context, uuid string, mode inventory.ComputeMode) error {
	t := p.start()
	err := p.opts.Hardware.SetComputeMode(ctx, uuid, mode)
	p.done(StepNVML, t)
	if err != nil {
		return fmt.Errorf("set compute mode %s on %s: %w", mode, uuid, err)
	}
	p.modesMu.Lock()
	defer p.modesMu.Unlock()
	p.modes[uuid] = mode
	return nil
}

// cdiName is a CDI device name unique within the claim's spec.
func cdiName(request, device string) string {
	return strings.ReplaceAll(request, "/", "-") + "-" + device
}
