//go:build cgo

package nvgpu_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

func instance(t *testing.T, g nvgpu.Interface, uuid string, id int) (inventory.MIGInstance, bool) {
	t.Helper()
	m := discover(t, g)
	gpu, ok := m.GPU(uuid)
	require.True(t, ok)
	require.NotNil(t, gpu.MIG)
	i := slices.IndexFunc(gpu.MIG.Instances, func(in inventory.MIGInstance) bool { return in.GPUInstanceID == id })
	if i < 0 {
		return inventory.MIGInstance{}, false
	}
	return gpu.MIG.Instances[i], true
}

// testMIGRoundTrip creates and destroys every profile at every placement.
func testMIGRoundTrip(t *testing.T, h harness) {
	g := h.open(t)
	gpu := migGPU(t, h, g)
	ctx := context.Background()
	for _, p := range gpu.MIG.Profiles {
		for _, pl := range p.Placements {
			t.Run(fmt.Sprintf("%s at %s", p.Name, pl), func(t *testing.T) {
				in, err := g.CreateMIGInstance(ctx, nvgpu.CreateMIGOptions{GPUUUID: gpu.UUID, Profile: p.Name, Placement: pl})
				require.NoError(t, err)
				assert.Equal(t, p.Name, in.ProfileName)
				assert.Equal(t, p.ID, in.ProfileID)
				assert.Equal(t, pl, in.Placement)
				require.Len(t, in.ComputeInstances, 1)
				assert.Regexp(t, `^MIG-`, in.UUID)

				seen, ok := instance(t, g, gpu.UUID, in.GPUInstanceID)
				require.True(t, ok, "created instance is discovered")
				assert.Equal(t, in, seen)

				ci := in.ComputeInstances[0].ID
				require.NoError(t, g.DestroyComputeInstance(ctx, nvgpu.ComputeInstanceRef{
					GPUUUID: gpu.UUID, GPUInstanceID: in.GPUInstanceID, ComputeInstanceID: ci}))
				seen, ok = instance(t, g, gpu.UUID, in.GPUInstanceID)
				require.True(t, ok, "GPU instance outlives its compute instance")
				assert.Empty(t, seen.ComputeInstances)
				assert.Empty(t, seen.UUID)
				err = g.DestroyComputeInstance(ctx, nvgpu.ComputeInstanceRef{
					GPUUUID: gpu.UUID, GPUInstanceID: in.GPUInstanceID, ComputeInstanceID: ci})
				assert.ErrorIs(t, err, nvgpu.ErrNotFound)

				require.NoError(t, g.DestroyGPUInstance(ctx, gpu.UUID, in.GPUInstanceID))
				_, ok = instance(t, g, gpu.UUID, in.GPUInstanceID)
				assert.False(t, ok, "GPU instance is gone")
				assert.ErrorIs(t, g.DestroyGPUInstance(ctx, gpu.UUID, in.GPUInstanceID), nvgpu.ErrNotFound)
			})
		}
	}
}

// profileBySlices finds the profile with the given compute and memory
// slices and no media suffix.
func profileBySlices(t *testing.T, gpu inventory.GPU, compute, memory int) inventory.MIGProfile {
	t.Helper()
	for _, p := range gpu.MIG.Profiles {
		if p.ComputeSlices == compute && p.MemorySlices == memory && !p.MediaExtensions() {
			return p
		}
	}
	t.Skipf("GPU %d has no %dg profile over %d memory slices", gpu.Index, compute, memory)
	return inventory.MIGProfile{}
}

func create(t *testing.T, g nvgpu.Interface, gpu inventory.GPU, p inventory.MIGProfile, pl inventory.MIGPlacement) inventory.MIGInstance {
	t.Helper()
	ctx := context.Background()
	in, err := g.CreateMIGInstance(ctx, nvgpu.CreateMIGOptions{GPUUUID: gpu.UUID, Profile: p.Name, Placement: pl})
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, ci := range in.ComputeInstances {
			_ = g.DestroyComputeInstance(ctx, nvgpu.ComputeInstanceRef{GPUUUID: gpu.UUID,
				GPUInstanceID: in.GPUInstanceID, ComputeInstanceID: ci.ID})
		}
		assert.NoError(t, g.DestroyGPUInstance(ctx, gpu.UUID, in.GPUInstanceID))
	})
	return in
}

func testOverlapRefused(t *testing.T, h harness) {
	g := h.open(t)
	gpu := migGPU(t, h, g)
	big := profileBySlices(t, gpu, 3, 4)
	small := profileBySlices(t, gpu, 2, 2)
	held := create(t, g, gpu, big, inventory.MIGPlacement{Start: 0, Size: 4})
	tests := map[string]struct {
		placement inventory.MIGPlacement
		wantErr   error
	}{
		"inside the live instance":  {placement: inventory.MIGPlacement{Start: 2, Size: 2}, wantErr: nvgpu.ErrPlacementOverlap},
		"at the live instance":      {placement: inventory.MIGPlacement{Start: 0, Size: 2}, wantErr: nvgpu.ErrPlacementOverlap},
		"next to the live instance": {placement: inventory.MIGPlacement{Start: 4, Size: 2}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in, err := g.CreateMIGInstance(context.Background(),
				nvgpu.CreateMIGOptions{GPUUUID: gpu.UUID, Profile: small.Name, Placement: tc.placement})
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.NoError(t, g.DestroyComputeInstance(context.Background(), nvgpu.ComputeInstanceRef{
					GPUUUID: gpu.UUID, GPUInstanceID: in.GPUInstanceID, ComputeInstanceID: in.ComputeInstances[0].ID}))
				require.NoError(t, g.DestroyGPUInstance(context.Background(), gpu.UUID, in.GPUInstanceID))
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			assert.ErrorContains(t, err, gpu.UUID)
			assert.ErrorContains(t, err, tc.placement.String())
			assert.ErrorContains(t, err, fmt.Sprintf("GPU instance %d (%s at 0:4)", held.GPUInstanceID, big.Name))
			m := discover(t, g)
			after, _ := m.GPU(gpu.UUID)
			assert.Len(t, after.MIG.Instances, 1, "nothing was created")
		})
	}
}

func testInvalidPlacement(t *testing.T, h harness) {
	g := h.open(t)
	gpu := migGPU(t, h, g)
	big := profileBySlices(t, gpu, 3, 4)
	tests := map[string]struct {
		profile   string
		placement inventory.MIGPlacement
		wantErr   error
	}{
		"start not allowed": {profile: big.Name, placement: inventory.MIGPlacement{Start: 2, Size: 4}, wantErr: nvgpu.ErrInvalidPlacement},
		"size not allowed":  {profile: big.Name, placement: inventory.MIGPlacement{Start: 0, Size: 3}, wantErr: nvgpu.ErrInvalidPlacement},
		"unknown profile":   {profile: "9g.1000gb", placement: inventory.MIGPlacement{Start: 0, Size: 8}, wantErr: nvgpu.ErrNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := g.CreateMIGInstance(context.Background(),
				nvgpu.CreateMIGOptions{GPUUUID: gpu.UUID, Profile: tc.profile, Placement: tc.placement})
			require.ErrorIs(t, err, tc.wantErr)
			assert.ErrorContains(t, err, gpu.UUID)
			assert.ErrorContains(t, err, tc.profile)
			m := discover(t, g)
			after, _ := m.GPU(gpu.UUID)
			assert.Empty(t, after.MIG.Instances, "nothing was created")
		})
	}
}

func testBusyDestroy(t *testing.T, h harness) {
	g := h.open(t)
	gpu := migGPU(t, h, g)
	p := profileBySlices(t, gpu, 1, 1)
	in := create(t, g, gpu, p, inventory.MIGPlacement{Start: 3, Size: 1})
	ctx := context.Background()

	err := g.DestroyGPUInstance(ctx, gpu.UUID, in.GPUInstanceID)
	require.ErrorIs(t, err, nvgpu.ErrInstanceBusy)
	assert.ErrorContains(t, err, gpu.UUID)
	assert.ErrorContains(t, err, fmt.Sprintf("GPU instance %d (%s at 3:1)", in.GPUInstanceID, p.Name))
	_, ok := instance(t, g, gpu.UUID, in.GPUInstanceID)
	assert.True(t, ok, "busy GPU instance still exists")

	err = g.SetMIGMode(ctx, gpu.UUID, false)
	require.ErrorIs(t, err, nvgpu.ErrInstanceBusy, "MIG is not disabled under live instances")
	mode, err := g.MIGMode(ctx, gpu.UUID)
	require.NoError(t, err)
	assert.True(t, mode.Enabled)
}

func testMIGDisabled(t *testing.T, h harness) {
	requireMutate(t, h)
	g := h.open(t)
	ctx := context.Background()
	ran := false
	for _, gpu := range discover(t, g).GPUs {
		switch {
		case !gpu.MIGCapable:
			_, err := g.MIGMode(ctx, gpu.UUID)
			assert.ErrorIs(t, err, nvgpu.ErrNotSupported, "GPU %d", gpu.Index)
			assert.ErrorIs(t, g.SetMIGMode(ctx, gpu.UUID, true), nvgpu.ErrNotSupported, "GPU %d", gpu.Index)
		case !gpu.MIGEnabled:
			p := gpu.MIG.Profiles[0]
			_, err := g.CreateMIGInstance(ctx, nvgpu.CreateMIGOptions{GPUUUID: gpu.UUID, Profile: p.Name, Placement: p.Placements[0]})
			assert.ErrorIs(t, err, nvgpu.ErrMIGDisabled, "GPU %d", gpu.Index)
			assert.ErrorContains(t, err, gpu.UUID)
		default:
			continue
		}
		ran = true
	}
	if !ran {
		t.Skip("every GPU has MIG enabled")
	}
}

func testComputeMode(t *testing.T, h harness) {
	requireMutate(t, h)
	g := h.open(t)
	ctx := context.Background()
	gpu := discover(t, g).GPUs[0]
	t.Cleanup(func() { assert.NoError(t, g.SetComputeMode(ctx, gpu.UUID, gpu.ComputeMode)) })
	for _, mode := range []inventory.ComputeMode{inventory.ComputeModeExclusiveProcess,
		inventory.ComputeModeProhibited, gpu.ComputeMode} {
		require.NoError(t, g.SetComputeMode(ctx, gpu.UUID, mode))
		m := discover(t, g)
		after, _ := m.GPU(gpu.UUID)
		assert.Equal(t, mode, after.ComputeMode)
	}
	err := g.SetComputeMode(ctx, gpu.UUID, "Shared")
	require.Error(t, err)
	assert.ErrorContains(t, err, `unknown mode "Shared"`)
}

// testMIGCaps: a live instance has two capability nodes of its own (GPU
// instance, compute instance); one that is gone has none.
func testMIGCaps(t *testing.T, h harness) {
	g := h.open(t)
	gpu := migGPU(t, h, g)
	ctx := context.Background()
	p := gpu.MIG.Profiles[0]
	if len(p.Placements) < 2 {
		t.Skipf("profile %s has fewer than two placements", p.Name)
	}
	seen := map[string]bool{}
	var ins []inventory.MIGInstance
	for _, pl := range p.Placements[:2] {
		in, err := g.CreateMIGInstance(ctx, nvgpu.CreateMIGOptions{GPUUUID: gpu.UUID, Profile: p.Name, Placement: pl})
		require.NoError(t, err)
		ins = append(ins, in)
		caps, err := g.MIGCaps(gpu, in.GPUInstanceID, in.ComputeInstances[0].ID)
		require.NoError(t, err)
		require.Len(t, caps, 2)
		for _, c := range caps {
			assert.Regexp(t, `^/dev/nvidia-caps/nvidia-cap[0-9]+$`, c)
			assert.False(t, seen[c], "%s belongs to one instance only", c)
			seen[c] = true
		}
	}
	_, err := g.MIGCaps(gpu, ins[0].GPUInstanceID, ins[0].ComputeInstances[0].ID+1)
	assert.ErrorIs(t, err, nvgpu.ErrNotFound, "unknown compute instance")
	for _, in := range ins {
		require.NoError(t, g.DestroyComputeInstance(ctx, nvgpu.ComputeInstanceRef{
			GPUUUID: gpu.UUID, GPUInstanceID: in.GPUInstanceID, ComputeInstanceID: in.ComputeInstances[0].ID}))
		require.NoError(t, g.DestroyGPUInstance(ctx, gpu.UUID, in.GPUInstanceID))
		_, err := g.MIGCaps(gpu, in.GPUInstanceID, in.ComputeInstances[0].ID)
		assert.ErrorIs(t, err, nvgpu.ErrNotFound, "destroyed GPU instance %d", in.GPUInstanceID)
	}
}
