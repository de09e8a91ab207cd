//go:build cgo

package tierratest

import (
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

var update = flag.Bool("update", false, "rewrite fakegpus.json from nvgpu's fake machines")

// models names the GPU model of each builder, its nvgpu fake machine and
// the product name constant that must match it.
var models = map[string]struct{ machine, product string }{
	"H200": {"dgxh200", ProductH200},
	"B200": {"dgxb200", ProductB200},
	"A100": {"dgxa100", ProductA100},
	"L4":   {"l4x4", ProductL4},
}

// discoverModels discovers each model's fake machine the way the plugin
// does (nvgpu.NewFake, then Machine) and keeps the model facts of its GPUs.
func discoverModels(t *testing.T) map[string]fakeModel {
	_, ctx := ktesting.NewTestContext(t)
	out := map[string]fakeModel{}
	for name, m := range models {
		f, err := nvgpu.NewFake(ctx, m.machine, nvgpu.Options{})
		require.NoError(t, err, m.machine)
		t.Cleanup(func() { _ = f.Close() })
		machine, err := f.Machine(ctx)
		require.NoError(t, err, m.machine)
		require.NotEmpty(t, machine.GPUs, m.machine)
		facts := modelFacts(machine.GPUs[0])
		for _, g := range machine.GPUs[1:] {
			require.Equal(t, facts, modelFacts(g), "%s: every GPU of a fake machine is the same model", m.machine)
		}
		assert.Equal(t, m.product, facts.ProductName, "product name constant of %s", name)
		out[name] = fakeModel{Machine: m.machine, GPU: facts}
	}
	return out
}

func TestFakeGPUsMatchNvgpu(t *testing.T) {
	want, err := json.MarshalIndent(discoverModels(t), "", "  ")
	require.NoError(t, err)
	want = append(want, '\n')
	if *update {
		require.NoError(t, os.WriteFile("fakegpus.json", want, 0o644))
		return
	}
	require.Equal(t, string(want), string(fakeGPUsJSON),
		"fakegpus.json differs from nvgpu's fake machines: go test ./pkg/tierratest -run TestFakeGPUsMatchNvgpu -update")
}

func TestBuildersUseFakeModels(t *testing.T) {
	discovered := discoverModels(t)
	builders := map[string]func(int, ...GPUOption) inventory.GPU{"H200": H200, "B200": B200, "A100": A100, "L4": L4}
	for name, build := range builders {
		g := build(3, WithNUMA(1))
		assert.Equal(t, discovered[name].GPU, modelFacts(g), name)
		assert.Equal(t, 3, g.Index, name)
		assert.Equal(t, 1, g.NUMANode, name)
		if g.MIG != nil {
			g.MIG.Profiles[0].Placements[0].Start = 99
			assert.NotEqual(t, 99, build(3).MIG.Profiles[0].Placements[0].Start, "%s: each call gets its own MIG data", name)
		}
	}
}
