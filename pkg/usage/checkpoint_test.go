package usage_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/usage"
)

func TestClaimFromCheckpoint(t *testing.T) {
	gpu := h200GPU()
	m := inventory.Machine{GPUs: []inventory.GPU{gpu}}
	rec := checkpoint.Claim{UID: "u", Namespace: "ns", Name: "c", Tenant: "acme", Phase: checkpoint.PhasePrepared,
		Devices: []checkpoint.Device{
			{Request: "a", Device: "gpu-0-mig-3g-0", GPUUUID: "GPU-0", MIG: &checkpoint.MIGInstance{Profile: "3g.71gb", GPUInstanceID: 2, ComputeInstanceID: 0}},
			{Request: "b", Device: "gpu-0-mig-3g-0", GPUUUID: "GPU-0", MIG: &checkpoint.MIGInstance{Profile: "3g.71gb", GPUInstanceID: 2, ComputeInstanceID: 0}},
			{Request: "mon", Device: "gpu-0", GPUUUID: "GPU-0", AdminAccess: true},
			{Request: "ts", Device: "gpu-0-ts-1", GPUUUID: "GPU-0", Sharing: "TimeSlicing"},
			{Request: "gone", Device: "gpu-9", GPUUUID: "GPU-9"},
		}}
	assert.Equal(t, usage.Claim{UID: "u", Namespace: "ns", Name: "c", Tenant: "acme", Devices: []usage.Device{
		{GPU: usage.MIGRef("GPU-0", 2, 0), Product: "NVIDIA H200", Profile: "3g.71gb", MemoryBytes: 70 * gib, Multiprocessors: 60},
		{GPU: usage.WholeGPU("GPU-0"), Product: "NVIDIA H200", MemoryBytes: 141 * gib, Multiprocessors: 132},
		{GPU: usage.WholeGPU("GPU-9")},
	}}, usage.ClaimFromCheckpoint(rec, m))
}
