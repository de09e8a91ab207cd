package prepare_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

const migSelector = `device.attributes["gpu.tierra.dev"].migProfile == "1g.18gb"`

func TestPrepareExclusive(t *testing.T) {
	e := newEnv(t, v1alpha1.TierInference, nil)
	claim := e.allocate(t, tierratest.MakeClaim("train", "ns").UID("uid-train").Request("gpu", tiers.ClassGPU).Obj())
	uuid := uuidOf(t, e, claim)

	devs, err := e.prep.Prepare(e.ctx, claim)
	require.NoError(t, err)
	require.Len(t, devs, 1)
	assert.Equal(t, []string{"gpu.tierra.dev/claim=uid-train-gpu-gpu-0"}, devs[0].CDIDeviceIDs)
	assert.Equal(t, inventory.ComputeModeExclusiveProcess, e.gpu(t, uuid).ComputeMode)
	spec, err := os.ReadFile(filepath.Join(e.cdi.Dir(), specFile(t, e)))
	require.NoError(t, err)
	assert.Contains(t, string(spec), "/dev/nvidia0")
	assert.Contains(t, string(spec), "NVIDIA_VISIBLE_DEVICES="+uuid)

	again, err := e.prep.Prepare(e.ctx, claim)
	require.NoError(t, err)
	assert.Equal(t, devs, again, "prepare is idempotent")

	require.NoError(t, e.prep.Unprepare(e.ctx, "uid-train"))
	require.NoError(t, e.prep.Unprepare(e.ctx, "uid-train"), "unprepare is idempotent")
	e.assertNothingPrepared(t)
}

func TestPrepareMIG(t *testing.T) {
	e := newEnv(t, v1alpha1.TierInference, nil)
	claim := e.allocate(t, tierratest.MakeClaim("infer", "ns").UID("uid-infer").Request("mig", tiers.ClassMIG).Selector(migSelector).Obj())
	parent := uuidOf(t, e, claim)

	devs, err := e.prep.Prepare(e.ctx, claim)
	require.NoError(t, err)
	require.Len(t, devs, 1)
	rec, ok := e.store.Get("uid-infer")
	require.True(t, ok)
	require.Equal(t, checkpoint.PhasePrepared, rec.Phase)
	require.NotNil(t, rec.Devices[0].MIG)
	g := e.gpu(t, parent)
	require.Len(t, g.MIG.Instances, 1)
	assert.Equal(t, "1g.18gb", g.MIG.Instances[0].ProfileName)
	assert.Equal(t, rec.Devices[0].MIG.UUID, g.MIG.Instances[0].UUID)
	spec, err := os.ReadFile(filepath.Join(e.cdi.Dir(), specFile(t, e)))
	require.NoError(t, err)
	assert.Contains(t, string(spec), "/dev/nvidia-caps/nvidia-cap")
	assert.Contains(t, string(spec), "NVIDIA_VISIBLE_DEVICES="+g.MIG.Instances[0].UUID)

	require.NoError(t, e.prep.Unprepare(e.ctx, "uid-infer"))
	e.assertNothingPrepared(t)
}

func TestPrepareRollsBackUnfinishedRecord(t *testing.T) {
	e := newEnv(t, v1alpha1.TierInference, nil)
	claim := e.allocate(t, tierratest.MakeClaim("infer", "ns").UID("uid-crash").Request("mig", tiers.ClassMIG).Selector(migSelector).Obj())
	_, err := e.prep.Prepare(e.ctx, claim)
	require.NoError(t, err)
	// A crash before "Prepared": the record says PrepareStarted.
	rec, _ := e.store.Get("uid-crash")
	rec.Phase = checkpoint.PhasePrepareStarted
	require.NoError(t, e.store.Put(rec))

	devs, err := e.prep.Prepare(e.ctx, claim)
	require.NoError(t, err, "the old instance is destroyed before the new one is created")
	require.Len(t, devs, 1)
	assert.Len(t, e.gpu(t, rec.Devices[0].GPUUUID).MIG.Instances, 1)
	require.NoError(t, e.prep.Unprepare(e.ctx, "uid-crash"))
	e.assertNothingPrepared(t)
}

func TestPrepareRefusesBadClaims(t *testing.T) {
	tests := map[string]struct {
		mutate  func(c *resourceapi.ResourceClaim)
		config  string
		wantIs  error
		wantMsg []string
	}{
		"malformed opaque config": {
			config:  `{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"Exclusive","bogus":1}}`,
			wantIs:  prepare.ErrInvalidConfig,
			wantMsg: []string{`unknown field "sharing.bogus"`},
		},
		"unknown strategy": {
			config:  `{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"Sliced"}}`,
			wantIs:  prepare.ErrInvalidConfig,
			wantMsg: []string{"sharing.strategy", "Sliced", "TimeSlicing"},
		},
		"unknown device": {
			mutate:  func(c *resourceapi.ResourceClaim) { c.Status.Allocation.Devices.Results[0].Device = "gpu-99" },
			wantIs:  prepare.ErrUnknownDevice,
			wantMsg: []string{`"gpu-99"`},
		},
		"another driver's device": {
			mutate:  func(c *resourceapi.ResourceClaim) { c.Status.Allocation.Devices.Results[0].Driver = "net.example.com" },
			wantIs:  prepare.ErrForeignDevice,
			wantMsg: []string{"net.example.com/node-1/gpu-0"},
		},
		"no allocation": {
			mutate: func(c *resourceapi.ResourceClaim) { c.Status.Allocation = nil },
			wantIs: prepare.ErrNotAllocated,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, v1alpha1.TierInference, nil)
			w := tierratest.MakeClaim("bad", "ns").UID("uid-bad").Request("gpu", tiers.ClassGPU)
			if tc.config != "" {
				w.Config(tc.config)
			}
			claim := e.allocate(t, w.Obj())
			if tc.mutate != nil {
				tc.mutate(claim)
			}
			_, err := e.prep.Prepare(e.ctx, claim)
			require.ErrorIs(t, err, tc.wantIs)
			assert.ErrorContains(t, err, "ns/bad")
			for _, s := range tc.wantMsg {
				assert.ErrorContains(t, err, s)
			}
			e.assertNothingPrepared(t)
		})
	}
}

func TestPrepareRefusesCrossTenantSoftSharing(t *testing.T) {
	ns := namespaces{
		"team-a": {v1alpha1.TenantLabel: "research"},
		"team-b": {v1alpha1.TenantLabel: "product"},
		"team-c": {v1alpha1.TenantLabel: "research"},
	}
	e := newEnv(t, v1alpha1.TierDev, ns)
	class := tiers.ClassName(v1alpha1.TierDev)
	a := e.allocate(t, tierratest.MakeClaim("a", "team-a").UID("uid-a").Request("gpu", class).Obj())
	b := e.allocate(t, tierratest.MakeClaim("b", "team-b").UID("uid-b").Request("gpu", class).Obj())
	c := e.allocate(t, tierratest.MakeClaim("c", "team-c").UID("uid-c").Request("gpu", class).Obj())
	require.Equal(t, a.Status.Allocation.Devices.Results[0].Device, b.Status.Allocation.Devices.Results[0].Device, "one shared GPU")

	_, err := e.prep.Prepare(e.ctx, a)
	require.NoError(t, err)
	_, err = e.prep.Prepare(e.ctx, b)
	require.Error(t, err)
	for _, s := range []string{`tenant "product"`, `tenant "research"`, "team-a/a", uuidOf(t, e, a)} {
		assert.ErrorContains(t, err, s)
	}
	_, ok := e.store.Get("uid-b")
	assert.False(t, ok, "the refused claim left no record")
	_, err = e.prep.Prepare(e.ctx, c)
	require.NoError(t, err, "the same tenant shares the GPU")
}

func uuidOf(t *testing.T, e *env, claim *resourceapi.ResourceClaim) string {
	name := claim.Status.Allocation.Devices.Results[0].Device
	for _, s := range e.cluster.Slices {
		for _, d := range s.Spec.Devices {
			if d.Name != name {
				continue
			}
			for _, attr := range []string{slices.AttrUUID, slices.AttrParentUUID} {
				if a, ok := d.Attributes[attrName(attr)]; ok {
					return *a.StringValue
				}
			}
		}
	}
	t.Fatalf("device %s not published", name)
	return ""
}

func attrName(full string) resourceapi.QualifiedName { return resourceapi.QualifiedName(full) }

func specFile(t *testing.T, e *env) string {
	entries, err := os.ReadDir(e.cdi.Dir())
	require.NoError(t, err)
	require.Len(t, entries, 1)
	return entries[0].Name()
}
