package prepare_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	tt "github.com/tierra-gpu/tierra/pkg/testing"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

func TestReconcile(t *testing.T) {
	e := newEnv(t, v1alpha1.TierInference, nil)
	kept := e.allocate(t, tt.MakeClaim("kept", "ns").UID("uid-kept").Request("mig", tiers.ClassMIG).Selector(migSelector).Obj())
	_, err := e.prep.Prepare(e.ctx, kept)
	require.NoError(t, err)
	unfinished := e.allocate(t, tt.MakeClaim("crashed", "ns").UID("uid-crashed").Request("mig", tiers.ClassMIG).Selector(migSelector).Obj())
	_, err = e.prep.Prepare(e.ctx, unfinished)
	require.NoError(t, err)
	rec, _ := e.store.Get("uid-crashed")
	rec.Phase = prepare.PhasePrepareStarted
	require.NoError(t, e.store.Put(rec))
	// A leaked instance (created, then the plugin died before checkpointing)
	// and a CDI spec without a record.
	leakGPU := e.gpu(t, rec.Devices[0].GPUUUID)
	_, err = e.gpus.CreateMIGInstance(e.ctx, nvgpu.CreateMIGOptions{GPUUUID: leakGPU.UUID, Profile: "1g.18gb", Placement: inventory.Placement{Start: 6, Size: 1}})
	require.NoError(t, err)
	_, err = e.cdi.Write("uid-orphan", []prepare.CDIDevice{{Name: "x", DeviceNodes: []string{"/dev/nvidia0"}}})
	require.NoError(t, err)

	m, err := e.gpus.Machine(e.ctx)
	require.NoError(t, err)
	specs, err := e.cdi.List()
	require.NoError(t, err)
	require.NoError(t, e.prep.Reconcile(e.ctx, m, specs))

	records := e.store.List()
	require.Len(t, records, 1)
	assert.Equal(t, "uid-kept", records[0].UID)
	specs, err = e.cdi.List()
	require.NoError(t, err)
	assert.Equal(t, []string{"uid-kept"}, specs)
	g := e.gpu(t, leakGPU.UUID)
	require.Len(t, g.MIG.Instances, 1, "only the kept claim's instance is left")
	assert.Equal(t, records[0].Devices[0].MIG.GPUInstanceID, g.MIG.Instances[0].GPUInstanceID)

	require.NoError(t, e.prep.Unprepare(e.ctx, "uid-kept"))
	e.assertNothingPrepared(t)
}
