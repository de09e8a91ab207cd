//go:build cgo

package nvgpu_test

import (
	"context"
	"errors"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

// harness is what the conformance suite needs from a machine under test.
type harness struct {
	// open returns the machine; fakes are fresh for every test.
	open func(t *testing.T) nvgpu.Interface
	// inject raises an XID on GPU index; nil where that is impossible.
	inject func(t *testing.T, g nvgpu.Interface, index int, xid uint64)
	// mutate allows tests that change MIG and compute mode.
	mutate bool
}

// conformance is the suite every machine must pass, fake or real.
var conformance = map[string]func(t *testing.T, h harness){
	"discovery invariants":               testDiscoveryInvariants,
	"placements follow the 8-slice rule": testPlacementRule,
	"unknown GPU is ErrNotFound":         testUnknownGPU,
	"MIG create and destroy round trip":  testMIGRoundTrip,
	"overlapping placement is refused":   testOverlapRefused,
	"invalid placement or profile":       testInvalidPlacement,
	"busy GPU instance is not destroyed": testBusyDestroy,
	"MIG disabled and non-MIG GPUs":      testMIGDisabled,
	"compute mode set and restore":       testComputeMode,
	"MIG capabilities of live instances": testMIGCaps,
	"events delivered and cancelled":     testEvents,
	"every GPU answers the prober":       testAnswers,
}

func runConformance(t *testing.T, h harness) {
	for name, test := range conformance {
		t.Run(name, func(t *testing.T) { test(t, h) })
	}
}

func TestConformanceFakes(t *testing.T) {
	for _, name := range nvgpu.FakeMachines() {
		t.Run(name, func(t *testing.T) {
			runConformance(t, harness{
				open: func(t *testing.T) nvgpu.Interface { return openFake(t, name) },
				inject: func(t *testing.T, g nvgpu.Interface, index int, xid uint64) {
					require.NoError(t, g.(*nvgpu.Fake).InjectXID(index, xid))
				},
				mutate: true,
			})
		})
	}
}

// mutateEnv opts in to the tests that change MIG and compute mode on real
// GPUs: they restore what they change, but a node in use should not run them.
const mutateEnv = "TIERRA_NVML_CONFORMANCE_MUTATE"

func TestConformanceRealNVML(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	g, err := nvgpu.New(ctx, nvgpu.Options{EventPoll: 100 * time.Millisecond})
	if errors.Is(err, nvgpu.ErrLibraryNotFound) {
		t.Skipf("real NVML conformance skipped: %v (real output is to be captured when a GPU is lent; "+
			"see pkg/nvgpu/testdata/README.md)", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, g.Close()) })
	m, err := g.Machine(ctx)
	require.NoError(t, err)
	if len(m.GPUs) == 0 {
		t.Skip("real NVML conformance skipped: NVML loaded but reports no GPUs")
	}
	runConformance(t, harness{
		open:   func(*testing.T) nvgpu.Interface { return g },
		mutate: os.Getenv(mutateEnv) == "1",
	})
}

func openFake(t *testing.T, name string) *nvgpu.Fake {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	f, err := nvgpu.NewFake(ctx, name, nvgpu.Options{EventPoll: 10 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, f.Close()) })
	return f
}

func discover(t *testing.T, g nvgpu.Interface) inventory.Machine {
	t.Helper()
	m, err := g.Machine(context.Background())
	require.NoError(t, err)
	return m
}

func requireMutate(t *testing.T, h harness) {
	t.Helper()
	if !h.mutate {
		t.Skipf("changes GPU state; set %s=1 to run on real GPUs", mutateEnv)
	}
}

var (
	busIDRe       = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)
	pcieRootRe    = regexp.MustCompile(`^pci[0-9a-f]{4}:[0-9a-f]{2}$`)
	ccRe          = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
	profileNameRe = regexp.MustCompile(`^[1-8]g\.[0-9]+gb(\+me|-me|\+me\.all|\+gfx)?$`)
)

func testDiscoveryInvariants(t *testing.T, h harness) {
	m := discover(t, h.open(t))
	require.NotEmpty(t, m.GPUs)
	assert.NotEmpty(t, m.DriverVersion)
	uuids := map[string]bool{}
	for i, g := range m.GPUs {
		assert.Equal(t, i, g.Index, "GPUs come in index order")
		assert.False(t, uuids[g.UUID], "UUID %s is unique", g.UUID)
		uuids[g.UUID] = true
		assert.Regexp(t, `^GPU-`, g.UUID)
		assert.NotEmpty(t, g.ProductName)
		assert.NotEqual(t, "Unknown", g.Architecture)
		assert.Regexp(t, ccRe, g.CUDAComputeCapability)
		assert.Equal(t, m.DriverVersion, g.DriverVersion)
		assert.Positive(t, g.MemoryBytes)
		assert.Regexp(t, busIDRe, g.PCIBusID)
		assert.Regexp(t, pcieRootRe, g.PCIeRoot)
		assert.GreaterOrEqual(t, g.NUMANode, -1)
		assert.Contains(t, []inventory.ComputeMode{inventory.ComputeModeDefault,
			inventory.ComputeModeExclusiveProcess, inventory.ComputeModeProhibited}, g.ComputeMode)
		if !g.MIGCapable {
			assert.False(t, g.MIGEnabled)
			assert.Nil(t, g.MIG)
			continue
		}
		require.NotNil(t, g.MIG, "GPU %d is MIG capable", i)
		checkMIGInfo(t, g)
	}
}

func checkMIGInfo(t *testing.T, g inventory.GPU) {
	t.Helper()
	mig := g.MIG
	assert.Positive(t, mig.MemorySlices)
	assert.Positive(t, mig.ComputeSlices)
	names := map[string]bool{}
	for _, p := range mig.Profiles {
		assert.Regexp(t, profileNameRe, p.Name)
		assert.False(t, names[p.Name], "profile name %s is unique", p.Name)
		names[p.Name] = true
		assert.NotEmpty(t, p.Placements, "profile %s has placements", p.Name)
		for _, pl := range p.Placements {
			assert.Equal(t, p.MemorySlices, pl.Size, "profile %s placement %s", p.Name, pl)
			assert.True(t, pl.Start >= 0 && pl.End() <= mig.MemorySlices, "profile %s placement %s in range", p.Name, pl)
		}
	}
	for i, in := range mig.Instances {
		p, ok := mig.Profile(in.ProfileName)
		require.True(t, ok, "instance %d has a known profile %s", in.GPUInstanceID, in.ProfileName)
		assert.Equal(t, p.ID, in.ProfileID)
		assert.Contains(t, p.Placements, in.Placement)
		for _, other := range mig.Instances[i+1:] {
			assert.False(t, in.Placement.Overlaps(other.Placement), "instances %d and %d overlap",
				in.GPUInstanceID, other.GPUInstanceID)
		}
		if len(in.ComputeInstances) > 0 {
			assert.Regexp(t, `^MIG-`, in.UUID)
		} else {
			assert.Empty(t, in.UUID)
		}
	}
}

// eightSliceRule is the placement table of every GPU with 7 compute and 8
// memory slices (A100, H100, H200, B200), keyed by NVML profile id.
var eightSliceRule = map[int]string{
	0: "{0,1,2,3,4,5,6}:1", // 1g
	7: "{0,1,2,3,4,5,6}:1", // 1g+me (REV1)
	9: "{0,2,4,6}:2",       // 1g, double memory (REV2)
	1: "{0,2,4}:2",         // 2g
	2: "{0,4}:4",           // 3g
	3: "{0}:4",             // 4g
	4: "{0}:8",             // 7g
}

func testPlacementRule(t *testing.T, h harness) {
	m := discover(t, h.open(t))
	checked := 0
	for _, g := range m.GPUs {
		if g.MIG == nil || g.MIG.MemorySlices != 8 || g.MIG.ComputeSlices != 7 {
			continue
		}
		for _, p := range g.MIG.Profiles {
			if want, ok := eightSliceRule[p.ID]; ok {
				assert.Equal(t, want, inventory.FormatPlacements(p.Placements), "GPU %d profile %s", g.Index, p.Name)
				checked++
			}
		}
	}
	if checked == 0 {
		t.Skip("no GPU with 7 compute and 8 memory slices")
	}
}

func testUnknownGPU(t *testing.T, h harness) {
	g := h.open(t)
	ctx := context.Background()
	const uuid = "GPU-00000000-0000-0000-0000-000000000000"
	_, err := g.MIGMode(ctx, uuid)
	assert.ErrorIs(t, err, nvgpu.ErrNotFound)
	assert.ErrorIs(t, g.SetComputeMode(ctx, uuid, inventory.ComputeModeDefault), nvgpu.ErrNotFound)
	assert.ErrorIs(t, g.DestroyGPUInstance(ctx, uuid, 1), nvgpu.ErrNotFound)
	_, err = g.CreateMIGInstance(ctx, nvgpu.CreateMIGOptions{GPUUUID: uuid, Profile: "1g.18gb"})
	assert.ErrorIs(t, err, nvgpu.ErrNotFound)
	assert.ErrorContains(t, err, uuid)
}

func testEvents(t *testing.T, h harness) {
	g := h.open(t)
	m := discover(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := g.Events(ctx)
	require.NoError(t, err)
	if h.inject != nil {
		idx := len(m.GPUs) - 1
		h.inject(t, g, idx, 79)
		select {
		case ev := <-events:
			assert.Equal(t, nvgpu.Event{GPUUUID: m.GPUs[idx].UUID, GPUIndex: idx, Type: nvgpu.EventXID, XID: 79,
				GPUInstanceID: -1, ComputeInstanceID: -1}, ev)
		case <-time.After(5 * time.Second):
			t.Fatal("injected XID not delivered")
		}
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, open := <-events:
			if !open {
				if f, ok := g.(*nvgpu.Fake); ok {
					assert.Zero(t, f.OpenEventSets(), "the event set is freed on cancel")
				}
				return
			}
		case <-deadline:
			t.Fatal("events channel not closed after cancel")
		}
	}
}

// migGPU returns a MIG-capable GPU with MIG enabled and no instances,
// enabling MIG for the test when needed; it skips when there is none.
func migGPU(t *testing.T, h harness, g nvgpu.Interface) inventory.GPU {
	t.Helper()
	requireMutate(t, h)
	ctx := context.Background()
	m := discover(t, g)
	i := slices.IndexFunc(m.GPUs, func(gpu inventory.GPU) bool {
		return gpu.MIGCapable && (gpu.MIG == nil || len(gpu.MIG.Instances) == 0)
	})
	if i < 0 {
		t.Skip("no MIG-capable GPU without MIG instances")
	}
	gpu := m.GPUs[i]
	if !gpu.MIGEnabled {
		require.NoError(t, g.SetMIGMode(ctx, gpu.UUID, true))
		t.Cleanup(func() { assert.NoError(t, g.SetMIGMode(ctx, gpu.UUID, false)) })
		gpu = discover(t, g).GPUs[i]
	}
	require.True(t, gpu.MIGEnabled)
	require.NotNil(t, gpu.MIG)
	return gpu
}

// testAnswers is read-only: every discovered GPU answers NVML, and an
// unknown UUID is ErrNotFound, not lost.
func testAnswers(t *testing.T, h harness) {
	g := h.open(t)
	ctx := context.Background()
	for _, gpu := range discover(t, g).GPUs {
		assert.NoError(t, g.Answers(ctx, gpu.UUID), "GPU %d", gpu.Index)
	}
	err := g.Answers(ctx, "GPU-00000000-0000-0000-0000-000000000000")
	assert.ErrorIs(t, err, nvgpu.ErrNotFound)
	assert.NotErrorIs(t, err, nvgpu.ErrGPULost)
}
