package score

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/structured"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
)

// migSlices is node's H200s in MIG mode as pkg/slices publishes them.
func migSlices(t *testing.T, node string, gpus int) []*resourceapi.ResourceSlice {
	t.Helper()
	policy := tierratest.MakePolicy().Tier("inference", v1alpha1.PartitioningMIG).Products(tierratest.ProductH200).DefaultPrice("1").Obj()
	m := tierratest.Machine(gpus, func(i int) inventory.GPU { return tierratest.H200(i, tierratest.WithMIG(true)) })
	dr, err := slices.Build(slices.Node{Name: node, Machine: m}, policy)
	require.NoError(t, err)
	rs := slices.ResourceSlices(node, dr)
	for _, s := range rs {
		s.UID, s.ResourceVersion = types.UID("uid-"+s.Name), "1"
	}
	return rs
}

// device finds the node's device by name.
func device(t *testing.T, nd *NodeDevices, name string) int {
	t.Helper()
	for j, d := range nd.Devices {
		if d.Spec.Name == name {
			return j
		}
	}
	require.Failf(t, "no device", "%s", name)
	return -1
}

// profile matches the MIG devices of one profile.
func profile(nd *NodeDevices, name string) Matcher {
	return MatchFunc(func(j int) bool { return strings.Contains(nd.Devices[j].Spec.Name, "-"+name+"-") })
}

func migRequest(shapes []Shape, m Matcher) Request {
	r := Request{Count: 1, Need: make([][]int64, len(shapes)), Match: m}
	for s := range shapes {
		r.Need[s] = shapes[s].Need(nil)
	}
	return r
}

func TestMIGInventory(t *testing.T) {
	table := NewTable(nil)
	nodes := NewInventory(slices.DriverName, table).Nodes(migSlices(t, "m", 2))
	nd := nodes["m"]
	require.NotNil(t, nd)
	require.Len(t, nd.Sets, 2, "one counter set per GPU")
	for _, s := range nd.Sets {
		assert.Equal(t, 8, s.Slices, "an H200 has 8 memory slices")
	}
	shapes, _ := table.Snapshot()
	j := device(t, nd, "gpu-0-3g-71gb-4")
	p := nd.Devices[j].Part
	require.NotNil(t, p)
	assert.Equal(t, uint64(0xf0), p.Slices, "3g at 4 covers slices 4-7")
	assert.Equal(t, int64(500), p.Share)

	// An allocated 3g at 4 leaves GPU 0 half its slices.
	alloc := &structured.AllocatedState{AllocatedDevices: sets.New(nd.Devices[j].ID), AggregatedCapacity: structured.NewConsumedCapacityCollection()}
	n := NodeOf(Host{MilliCPU: 64000, Memory: 1 << 40}, nd, shapes, alloc)
	assert.Equal(t, int64(1500), GPUFreeAfter(n, shapes, nil), "idle share counts memory slices, not 36 exclusive devices")

	// A 1g lands on the used GPU, beside the 3g; a 3g now only fits at 0.
	picks, ok := FirstFit(n, &Pod{Requests: []Request{migRequest(shapes, profile(nd, "1g-18gb"))}}, nil)
	require.True(t, ok)
	require.Len(t, picks, 1)
	assert.Equal(t, "gpu-0-1g-18gb-0", nd.Devices[picks[0].GPU].Spec.Name)
	assert.Equal(t, int64(125), picks[0].Take)
	picks, ok = FirstFit(n, &Pod{Requests: []Request{func() Request {
		r := migRequest(shapes, profile(nd, "3g-71gb"))
		r.Count = 4
		return r
	}()}}, nil)
	assert.False(t, ok, "GPU 0 has room for one more 3g, GPU 1 for two")
	assert.Nil(t, picks)
	r := migRequest(shapes, profile(nd, "3g-71gb"))
	r.Count = 2
	picks, ok = FirstFit(n, &Pod{Requests: []Request{r}}, nil)
	require.True(t, ok)
	var got []string
	for _, p := range picks {
		got = append(got, nd.Devices[p.GPU].Spec.Name)
	}
	assert.Equal(t, []string{"gpu-0-3g-71gb-0", "gpu-1-3g-71gb-4"}, got, "counters, not device names, rule out the taken placement")
}

func TestMIGFragmentation(t *testing.T) {
	table := NewTable([]Typical{{Milli: 500, Num: 1, Weight: 0.5}, {Milli: 1000, Num: 1, Weight: 0.5}})
	inv := NewInventory(slices.DriverName, table)
	nodes := inv.Nodes(append(migSlices(t, "a", 1), migSlices(t, "b", 1)...))
	shapes, classes := table.Snapshot()
	a, b := nodes["a"], nodes["b"]
	// Node a runs a 3g at 4; node b is empty.
	alloc := &structured.AllocatedState{AllocatedDevices: sets.New(a.Devices[device(t, a, "gpu-0-3g-71gb-4")].ID), AggregatedCapacity: structured.NewConsumedCapacityCollection()}
	host := Host{MilliCPU: 64000, Memory: 1 << 40}
	na, nb := NodeOf(host, a, shapes, alloc), NodeOf(host, b, shapes, alloc)
	buf := make([]int64, 0, 32)

	// a: slices 0-3 are free and a 3g at 0 can use them; no 7g fits.
	assert.InDelta(t, 250, na.FragWith(classes, shapes, buf, 0, nil), 1e-9)
	assert.InDelta(t, 0, nb.FragWith(classes, shapes, buf, 0, nil), 1e-9, "an empty GPU fits every typical pod")

	one := &Pod{Requests: []Request{migRequest(shapes, MatchFunc(func(j int) bool {
		return strings.Contains(a.Devices[j].Spec.Name, "-1g-18gb-")
	}))}}
	pa, ok := FirstFit(na, one, nil)
	require.True(t, ok)
	assert.InDelta(t, 375, na.FragWith(classes, shapes, buf, 0, pa), 1e-9, "a 1g at 0 leaves slices 1-3 no 3g can use")
	pb, ok := FirstFit(nb, one, nil)
	require.True(t, ok)
	assert.InDelta(t, 0.5*375+0.5*875, nb.FragWith(classes, shapes, buf, 0, pb), 1e-9, "and on b it also rules out the 7g")

	ra := rank(t, Frag, na, one, shapes, classes)
	rb := rank(t, Frag, nb, one, shapes, classes)
	assert.True(t, rb.Less(ra), "frag puts the 1g beside the 3g: %v vs %v", ra, rb)
	assert.True(t, rank(t, BestFit, nb, one, shapes, classes).Less(rank(t, BestFit, na, one, shapes, classes)))
}
