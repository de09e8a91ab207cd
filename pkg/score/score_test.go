package score

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/pkg/slices"
)

func sharedDevice(product string) resourceapi.Device {
	step := resource.MustParse("1")
	return resourceapi.Device{
		Name:                     "gpu-0",
		AllowMultipleAllocations: ptr.To(true),
		Attributes:               map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{slices.AttrProductName: {StringValue: ptr.To(product)}},
		Capacity: map[resourceapi.QualifiedName]resourceapi.DeviceCapacity{
			slices.CapCompute: {Value: resource.MustParse("1000"), RequestPolicy: &resourceapi.CapacityRequestPolicy{
				ValidRange: &resourceapi.CapacityRequestPolicyRange{Min: &step, Step: &step},
			}},
			slices.CapMemory: {Value: resource.MustParse("16Gi")},
		},
	}
}

func TestShapeOf(t *testing.T) {
	sh, err := SharedShapeOf(sharedDevice("T4"))
	require.NoError(t, err)
	assert.Equal(t, "T4", sh.Product)
	assert.Equal(t, resourceapi.QualifiedName(slices.CapCompute), sh.Dims[sh.Compute].Name)
	assert.Equal(t, []int64{1000_000, 16 << 30 * 1000}, sh.Full())
	need := sh.Need(map[resourceapi.QualifiedName]int64{slices.CapCompute: 300_000, slices.CapMemory: 0})
	assert.Equal(t, []int64{300_000, 0}, need)
	assert.Equal(t, int64(300), sh.ShareOf(need))
	// A capacity the claim does not name is consumed as the allocator's
	// fillEmptyRequest does: the policy's default, else all of it.
	assert.Equal(t, []int64{300_000, 16 << 30 * 1000}, sh.Need(map[resourceapi.QualifiedName]int64{slices.CapCompute: 300_000}))
	assert.Equal(t, []int64{1000_000, 16 << 30 * 1000}, sh.Need(nil), "the compute range has no default: all of it")
	def := sharedDevice("T4")
	c := def.Capacity[slices.CapCompute]
	c.RequestPolicy.Default = ptr.To(resource.MustParse("125"))
	def.Capacity[slices.CapCompute] = c
	withDefault, err := SharedShapeOf(def)
	require.NoError(t, err)
	assert.Equal(t, int64(125_000), withDefault.Need(map[resourceapi.QualifiedName]int64{slices.CapMemory: 0})[withDefault.Compute])

	whole := sharedDevice("T4")
	whole.AllowMultipleAllocations = nil
	_, err = SharedShapeOf(whole)
	require.ErrorIs(t, err, ErrNotShared)
	ex := ShapeOf(whole)
	assert.True(t, ex.Exclusive)
	assert.Equal(t, []int64{1000}, ex.Need(nil), "an exclusive device gives up all of itself")
}

func TestConsumedMilli(t *testing.T) {
	mib := resource.MustParse("1Mi")
	d := Dim{Capacity: 1 << 40, Policy: &resourceapi.CapacityRequestPolicy{ValidRange: &resourceapi.CapacityRequestPolicyRange{Min: &mib, Step: &mib}}}
	assert.Equal(t, mib.MilliValue(), ConsumedMilli(0, d), "below the minimum: the minimum")
	assert.Equal(t, 2*mib.MilliValue(), ConsumedMilli(mib.MilliValue()+1, d), "rounded up to the step")
	v := []resource.Quantity{resource.MustParse("10"), resource.MustParse("20")}
	assert.Equal(t, int64(20_000), ConsumedMilli(15_000, Dim{Policy: &resourceapi.CapacityRequestPolicy{ValidValues: v}}))
	assert.Equal(t, int64(7), ConsumedMilli(7, Dim{}))
}

// twoShapes is a shape table: 0 = shared "A", 1 = shared "B".
func twoShapes() []Shape {
	return []Shape{
		{Product: "A", Dims: []Dim{{Name: "c", Capacity: 1000}}},
		{Product: "B", Dims: []Dim{{Name: "c", Capacity: 1000}}},
	}
}

func gpus(shape int, free ...int64) []GPU {
	out := make([]GPU, len(free))
	for i, f := range free {
		out[i] = GPU{Shape: shape, Free: []int64{f}}
	}
	return out
}

func share(milli int64, count int, shapes ...int) Request {
	r := Request{Count: count, Share: milli, Need: make([][]int64, 2)}
	for _, s := range shapes {
		r.Need[s] = []int64{milli}
	}
	return r
}

func TestFirstFit(t *testing.T) {
	n := &Node{MilliCPU: 1000, Memory: 1000, GPUs: gpus(0, 200, 800, 1000, 1000)}
	picks, ok := FirstFit(n, &Pod{Requests: []Request{share(500, 1, 0)}}, nil)
	require.True(t, ok)
	assert.Equal(t, []Pick{{GPU: 1, Take: 500}}, picks, "the first device in order with enough left")

	picks, ok = FirstFit(n, &Pod{Requests: []Request{share(1000, 2, 0)}}, nil)
	require.True(t, ok)
	assert.Equal(t, []Pick{{2, 1000}, {3, 1000}}, picks)

	_, ok = FirstFit(n, &Pod{Requests: []Request{share(1000, 3, 0)}}, nil)
	assert.False(t, ok)
	_, ok = FirstFit(n, &Pod{Requests: []Request{share(100, 1, 1)}}, nil)
	assert.False(t, ok, "the request cannot use shape 0")

	two := &Pod{Requests: []Request{share(1000, 1, 0), share(1000, 1, 0)}}
	picks, ok = FirstFit(n, two, nil)
	require.True(t, ok)
	assert.Equal(t, []Pick{{2, 1000}, {3, 1000}}, picks, "no device twice")

	odd := share(100, 1, 0)
	odd.Match = MatchFunc(func(j int) bool { return j == 3 })
	picks, _ = FirstFit(n, &Pod{Requests: []Request{odd}}, nil)
	assert.Equal(t, []Pick{{3, 100}}, picks, "Match narrows the devices")
}

func TestMostPopular(t *testing.T) {
	var pods []Typical
	for range 6 {
		pods = append(pods, Typical{MilliCPU: 1000, Milli: 500, Num: 1})
	}
	for range 3 {
		pods = append(pods, Typical{MilliCPU: 2000, Milli: 1000, Num: 2})
	}
	pods = append(pods, Typical{MilliCPU: 100}, Typical{MilliCPU: 4000, Milli: 1000, Num: 8})
	got := MostPopular(pods)
	require.Len(t, got, 3, "ten at a time: all three shapes, cpu-only pods left out")
	assert.InDelta(t, 0.6, got[0].Weight, 1e-9)
	assert.Equal(t, int64(500), got[0].Milli)
	assert.InDelta(t, 0.3, got[1].Weight, 1e-9)
}

func rank(t *testing.T, scorer string, n *Node, p *Pod, shapes []Shape, classes []Class) Rank {
	t.Helper()
	s, err := NewScorer(scorer)
	require.NoError(t, err)
	picks, ok := FirstFit(n, p, nil)
	require.True(t, ok)
	return s.Score(&Candidate{Node: n, Pod: p, Picks: picks, Shapes: shapes, Classes: classes})
}

func TestFragKeepsCPUPodsOffGPUNodes(t *testing.T) {
	shapes := twoShapes()
	classes := NewClasses([]Typical{{MilliCPU: 4000, Milli: 1000, Num: 1, Weight: 1}}, shapes)
	gpuNode := &Node{MilliCPU: 8000, Memory: 1 << 30, GPUs: gpus(0, 1000, 1000)}
	cpuNode := &Node{MilliCPU: 8000, Memory: 1 << 30}
	cpuPod := &Pod{MilliCPU: 6000, Memory: 1 << 20}
	onGPU := rank(t, Frag, gpuNode, cpuPod, shapes, classes)
	onCPU := rank(t, Frag, cpuNode, cpuPod, shapes, classes)
	assert.True(t, onGPU.Less(onCPU), "a cpu pod that strands the GPU node's GPUs ranks the GPU node lower (%v vs %v)", onGPU, onCPU)
	assert.Equal(t, 2000.0, -onGPU.Primary, "both GPUs become unusable for the typical pod")
}

func TestFragPrefersThePackedGPU(t *testing.T) {
	shapes := twoShapes()
	classes := NewClasses([]Typical{{MilliCPU: 100, Milli: 1000, Num: 1, Weight: 1}}, shapes)
	// Node a already has a partly used GPU; node b two idle ones. A half
	// GPU pod on b breaks a whole GPU; on a it fills the used one.
	a := &Node{MilliCPU: 8000, Memory: 1 << 30, GPUs: gpus(0, 500, 1000)}
	b := &Node{MilliCPU: 8000, Memory: 1 << 30, GPUs: gpus(0, 1000, 1000)}
	pod := &Pod{MilliCPU: 100, Requests: []Request{share(500, 1, 0)}}
	ra, rb := rank(t, Frag, a, pod, shapes, classes), rank(t, Frag, b, pod, shapes, classes)
	assert.True(t, rb.Less(ra), "frag: %v on a, %v on b", ra, rb)
	ba, bb := rank(t, BestFit, a, pod, shapes, classes), rank(t, BestFit, b, pod, shapes, classes)
	assert.True(t, bb.Less(ba), "bestfit: %v on a, %v on b", ba, bb)
}

func TestFragCountsProductsPerGPU(t *testing.T) {
	shapes := twoShapes()
	classes := NewClasses([]Typical{{MilliCPU: 0, Milli: 1000, Num: 1, Products: []string{"B"}, Weight: 1}}, shapes)
	mixed := &Node{MilliCPU: 1000, Memory: 1, GPUs: append(gpus(0, 1000), gpus(1, 1000)...)}
	assert.Equal(t, 1000.0, mixed.Frag(classes, shapes, nil), "the A GPU is idle share the B-only pod cannot use")
	mixed.GPUs[1].Free[0] = 0
	assert.Equal(t, 1000.0, mixed.Frag(classes, shapes, nil), "cached until Changed")
	mixed.Changed()
	assert.Equal(t, 1000.0, mixed.FragWith(classes, shapes, nil, 0, nil))
}

func TestNewScorer(t *testing.T) {
	for _, n := range Names() {
		s, err := NewScorer(n)
		require.NoError(t, err)
		assert.Equal(t, n, s.Name())
	}
	_, err := NewScorer("nope")
	assert.ErrorContains(t, err, "unknown scorer")
	s, _ := NewScorer(Default)
	assert.Equal(t, 50, s.(Sampler).NodesToFind(50))
	assert.Equal(t, 497, s.(Sampler).NodesToFind(1213), "41% of 1213 nodes")
}
