package prepare_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

func TestHeldDevicesFromRecords(t *testing.T) {
	device := func(name, gpu, sharing, mode string) checkpoint.Device {
		return checkpoint.Device{Request: "gpu", Pool: node, Device: name, GPUUUID: gpu, Sharing: sharing, Mode: mode}
	}
	held := func(name, claim, tenant string, mode tenancy.Mode, strategy string) slices.Held {
		return slices.Held{Pool: node, Device: name, Use: tenancy.Use{Claim: claim, Tenant: tenant, Mode: mode, Strategy: strategy}}
	}
	admin := device("gpu-2", "GPU-2", "Exclusive", "Whole")
	admin.AdminAccess = true
	tests := map[string]struct {
		records []checkpoint.Claim
		want    map[string][]slices.Held
	}{
		"none": {want: map[string][]slices.Held{}},
		"every phase holds": {
			records: []checkpoint.Claim{
				{UID: "a", Namespace: "ns", Name: "a", Tenant: "research", Phase: checkpoint.PhasePrepared,
					Devices: []checkpoint.Device{device("gpu-0-tenant-0", "GPU-0", "TimeSlicing", "Shared")}},
				{UID: "b", Namespace: "ns", Name: "b", Phase: checkpoint.PhasePrepareStarted,
					Devices: []checkpoint.Device{device("gpu-1", "GPU-1", "Exclusive", "Whole")}},
				{UID: "c", Namespace: "ns", Name: "c", Tenant: "research", Phase: checkpoint.PhaseUnprepareStarted,
					Devices: []checkpoint.Device{device("gpu-0-tenant-0", "GPU-0", "TimeSlicing", "Shared")}},
			},
			want: map[string][]slices.Held{
				"GPU-0": {held("gpu-0-tenant-0", "ns/a", "research", tenancy.ModeShared, "TimeSlicing"),
					held("gpu-0-tenant-0", "ns/c", "research", tenancy.ModeShared, "TimeSlicing")},
				"GPU-1": {held("gpu-1", "ns/b", tenancy.Open, tenancy.ModeWhole, "")},
			},
		},
		"admin access holds nothing": {
			records: []checkpoint.Claim{{UID: "a", Namespace: "ns", Name: "a", Phase: checkpoint.PhasePrepared,
				Devices: []checkpoint.Device{admin, device("gpu-3", "GPU-3", "Exclusive", "Whole")}}},
			want: map[string][]slices.Held{"GPU-3": {held("gpu-3", "ns/a", tenancy.Open, tenancy.ModeWhole, "")}},
		},
		"records of older releases: mode from what they did": {
			records: []checkpoint.Claim{{UID: "a", Namespace: "ns", Name: "a", Phase: checkpoint.PhasePrepared,
				Devices: []checkpoint.Device{device("gpu-4", "GPU-4", "MPS", "")}}},
			want: map[string][]slices.Held{"GPU-4": {held("gpu-4", "ns/a", tenancy.Open, tenancy.ModeShared, "MPS")}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, v1alpha1.TierDev, nil)
			for _, r := range tc.records {
				require.NoError(t, e.store.Put(r))
			}
			got := e.prep.HeldDevices()
			for uuid := range got {
				// Record order is the store's; compare as sets.
				assert.ElementsMatch(t, tc.want[uuid], got[uuid], uuid)
			}
			assert.Len(t, got, len(tc.want))
		})
	}
}

func TestHeldDevicesOfAPreparedClaim(t *testing.T) {
	e := newEnv(t, v1alpha1.TierInference, namespaces{"team-a": {v1alpha1.TenantLabel: "research"}})
	claim := e.allocate(t, tierratest.MakeClaim("infer", "team-a").UID("uid-infer").Request("mig", tiers.ClassMIG).Obj())
	_, err := e.prep.Prepare(e.ctx, claim)
	require.NoError(t, err)
	r := claim.Status.Allocation.Devices.Results[0]
	parent := e.gpu(t, e.store.List()[0].Devices[0].GPUUUID)

	assert.Equal(t, map[string][]slices.Held{parent.UUID: {{Pool: node, Device: r.Device,
		Use: tenancy.Use{Claim: "team-a/infer", Tenant: "research", Mode: tenancy.ModeMIG}}}}, e.prep.HeldDevices())
	require.NoError(t, e.prep.Unprepare(e.ctx, string(claim.UID)))
	assert.Empty(t, e.prep.HeldDevices(), "an unprepared claim holds nothing")
}
