package prepare

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// ReconcileInput is what the startup reconcile works from.
type ReconcileInput struct {
	// Machine is the hardware as discovered now.
	Machine inventory.Machine
	// CDISpecs are the claim UIDs of the CDI specs on disk.
	CDISpecs []string
	// Quarantined are the corrupt records checkpoint.Open moved aside
	// (checkpoint.Report.Quarantined). The claims they held are unknown,
	// so while any is reported nothing a claim could hold is destroyed,
	// stopped or reset beyond what the readable records say.
	Quarantined []string
}

// Reconcile brings the node in line with the checkpoint at startup, before
// the kubelet is served. It never touches what it cannot prove is
// Tierra's and unused:
//   - unfinished claims are rolled back; a MIG instance is destroyed only
//     as part of such a rollback: the record's own instance, or the one
//     with exactly the profile and placement the record planned that no
//     other record owns (a crash between create and record);
//   - MIG instances no record owns or planned are kept (an admin's layout,
//     or a claim whose record was lost) and logged;
//   - when no record was quarantined, what no record holds is reset: MPS
//     daemons this plugin started are stopped, whole published GPUs go
//     back to the Default compute mode, time-sliced shared GPUs to the
//     default time-slice, and CDI specs without a record are deleted.
//
// A quarantined record may have held any of those, so then only the
// rollbacks run, and a log line says what was kept.
func (p *Preparer) Reconcile(ctx context.Context, in ReconcileInput) error {
	logger := klog.FromContext(ctx)
	owned, errs := p.rollBack(ctx, in.Machine)
	records := p.opts.Store.List()
	p.logForeignInstances(ctx, in.Machine, owned)
	if len(in.Quarantined) > 0 {
		logger.Info("Checkpoint records were quarantined: keeping every MPS daemon, compute mode, time-slice, MIG instance and CDI spec no readable record holds, since a lost record may hold it; free them by hand once its claim is gone",
			"quarantined", in.Quarantined)
		return errors.Join(errs...)
	}
	errs = append(errs, p.stopOrphanDaemons(ctx, records)...)
	errs = append(errs, p.resetOrphanGPUs(ctx, in.Machine, records)...)
	errs = append(errs, p.deleteOrphanSpecs(ctx, in.CDISpecs, records)...)
	return errors.Join(errs...)
}

// rollBack undoes every record that is not Prepared and returns the MIG
// instances records owned (including those it destroyed) by instanceKey.
func (p *Preparer) rollBack(ctx context.Context, machine inventory.Machine) (sets.Set[string], []error) {
	logger := klog.FromContext(ctx)
	records := p.opts.Store.List()
	owned := sets.New[string]()
	for _, rec := range records {
		for _, d := range rec.Devices {
			if d.MIG != nil {
				owned.Insert(instanceKey(d.GPUUUID, d.MIG.GPUInstanceID))
			}
		}
	}
	var errs []error
	for _, rec := range records {
		if rec.Phase == checkpoint.PhasePrepared {
			continue
		}
		rec = adoptPlanned(ctx, rec, machine, owned)
		logger.Info("Rolling back an unfinished claim", "claim", klog.KRef(rec.Namespace, rec.Name), "uid", rec.UID, "phase", rec.Phase)
		if err := p.undo(ctx, rec); err != nil {
			errs = append(errs, fmt.Errorf("roll back claim %s/%s: %w", rec.Namespace, rec.Name, err))
		}
	}
	return owned, errs
}

// adoptPlanned takes into the record, for each device that planned a MIG
// instance but never recorded one (the plugin died between creating it and
// checkpointing it), the live instance of exactly the planned profile and
// placement that no record owns, so that undo destroys it. The allocator
// never gives one placement to two live claims, so such an instance is
// this claim's or a dead claim's. Adopted instances join owned.
func adoptPlanned(ctx context.Context, rec checkpoint.Claim, machine inventory.Machine, owned sets.Set[string]) checkpoint.Claim {
	for i, d := range rec.Devices {
		if d.PlannedMIG == nil || d.MIG != nil || d.AdminAccess {
			continue
		}
		inst, ok := plannedInstance(machine, d.GPUUUID, *d.PlannedMIG, func(id int) bool {
			return owned.Has(instanceKey(d.GPUUUID, id))
		})
		if !ok {
			continue
		}
		rec.Devices[i].MIG = &inst
		owned.Insert(instanceKey(d.GPUUUID, inst.GPUInstanceID))
		klog.FromContext(ctx).Info("Taking the MIG instance an interrupted prepare created into its record, to destroy it",
			"claim", klog.KRef(rec.Namespace, rec.Name), "gpu", d.GPUUUID, "gpuInstance", inst.GPUInstanceID, "profile", inst.Profile)
	}
	return rec
}

// logForeignInstances says which MIG instances on GPUs this driver
// publishes MIG devices of it keeps although no record owns them.
func (p *Preparer) logForeignInstances(ctx context.Context, machine inventory.Machine, owned sets.Set[string]) {
	logger := klog.FromContext(ctx)
	inv := p.view.Load().inv
	for _, g := range machine.GPUs {
		if g.MIG == nil || !g.MIGEnabled || !inv.managesMIG(g.UUID) {
			continue
		}
		for _, inst := range g.MIG.Instances {
			if owned.Has(instanceKey(g.UUID, inst.GPUInstanceID)) {
				continue
			}
			logger.Info("Keeping a MIG instance no claim record owns or planned: Tierra did not create it (an admin's layout) or its record was lost; its placement cannot be prepared until it is destroyed by hand",
				"gpu", g.UUID, "gpuInstance", inst.GPUInstanceID, "profile", inst.ProfileName, "placement", inst.Placement)
		}
	}
}

// deleteOrphanSpecs deletes the CDI specs of claims without a record.
func (p *Preparer) deleteOrphanSpecs(ctx context.Context, specs []string, records []checkpoint.Claim) []error {
	uids := sets.New[string]()
	for _, r := range records {
		uids.Insert(r.UID)
	}
	var errs []error
	for _, uid := range specs {
		if uids.Has(uid) {
			continue
		}
		klog.FromContext(ctx).Info("Deleting a CDI spec no claim owns", "uid", uid)
		if err := p.opts.CDI.Delete(uid); err != nil {
			errs = append(errs, fmt.Errorf("delete CDI spec of %s: %w", uid, err))
		}
	}
	return errs
}

func instanceKey(gpu string, gpuInstanceID int) string {
	return fmt.Sprintf("%s/%d", gpu, gpuInstanceID)
}

// managesMIG reports whether the node publishes MIG devices of the GPU,
// i.e. whether Tierra may have created MIG instances on it.
func (inv *NodePool) managesMIG(uuid string) bool {
	for _, d := range inv.devices {
		if slices.StringAttribute(d, slices.AttrParentUUID) == uuid {
			return true
		}
	}
	return false
}
