package prepare

import (
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// recordedInstance is what a record keeps of a live MIG instance: enough to
// destroy it (its GPU instance and first compute instance).
func recordedInstance(inst inventory.MIGInstance) checkpoint.MIGInstance {
	out := checkpoint.MIGInstance{Profile: inst.ProfileName, Placement: inst.Placement, GPUInstanceID: inst.GPUInstanceID, UUID: inst.UUID}
	if len(inst.ComputeInstances) > 0 {
		out.ComputeInstanceID = inst.ComputeInstances[0].ID
	}
	return out
}

// plannedInstance finds on the machine the live instance of exactly the
// planned profile and placement on the GPU that no record owns (owned says
// which GPU instance IDs of that GPU records hold): the one an interrupted
// or failed create of the planning claim left behind. The allocator never
// gives one placement to two live claims, so no other claim's instance can
// match. Both the failed-create path of prepare and the startup rollback
// use it.
func plannedInstance(m inventory.Machine, gpu string, planned checkpoint.PlannedMIG, owned func(gpuInstanceID int) bool) (checkpoint.MIGInstance, bool) {
	g, ok := m.GPU(gpu)
	if !ok || g.MIG == nil {
		return checkpoint.MIGInstance{}, false
	}
	for _, inst := range g.MIG.Instances {
		if inst.ProfileName == planned.Profile && inst.Placement == planned.Placement && !owned(inst.GPUInstanceID) {
			return recordedInstance(inst), true
		}
	}
	return checkpoint.MIGInstance{}, false
}
