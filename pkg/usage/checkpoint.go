package usage

import (
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// ClaimFromCheckpoint turns the plugin's record of a prepared claim into a
// Claim, its devices sized from the node's inventory: a MIG device is its
// instance, any other its whole GPU (shared ones too: use on a shared GPU is
// measured against the GPU). Admin-access devices (monitoring) hold no GPU
// and are left out. The caller adds what the record lacks: the pods the
// claim is reserved for, its tier and its cost.
func ClaimFromCheckpoint(c checkpoint.Claim, m inventory.Machine) Claim {
	out := Claim{UID: c.UID, Namespace: c.Namespace, Name: c.Name, Tenant: c.Tenant}
	seen := map[GPURef]bool{}
	for _, d := range c.Devices {
		if d.AdminAccess || d.GPUUUID == "" {
			continue
		}
		ref, profile := WholeGPU(d.GPUUUID), ""
		if d.MIG != nil {
			ref, profile = MIGRef(d.GPUUUID, d.MIG.GPUInstanceID, d.MIG.ComputeInstanceID), d.MIG.Profile
		}
		if seen[ref] {
			continue // one device in two requests
		}
		seen[ref] = true
		gpu, ok := m.GPU(d.GPUUUID)
		if !ok {
			out.Devices = append(out.Devices, Device{GPU: ref, Profile: profile})
			continue
		}
		out.Devices = append(out.Devices, GPUDevice(gpu, ref, profile))
	}
	return out
}
