package yield

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/dynamic-resource-allocation/structured"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/tierra-gpu/tierra/pkg/allocator"
	"github.com/tierra-gpu/tierra/pkg/sim"
)

// openb is the whole openb cluster (1,213 nodes, 6,212 GPUs) as the
// scheduler sees it, with every GPU partly used at random, and a pod
// asking for a share of one GPU.
type openb struct {
	dra   *fakeDRA
	nodes []fwk.NodeInfo
	pod   *v1.Pod
}

func loadOpenB(b *testing.B) *openb {
	b.Helper()
	dir := filepath.Join("..", "..", "..", "..", "shared", "data", "openb")
	if _, err := os.Stat(filepath.Join(dir, sim.NodeListFile)); err != nil {
		b.Skipf("openb trace not found at %s: %v", dir, err)
	}
	nodes, err := sim.LoadNodes(filepath.Join(dir, sim.NodeListFile))
	require.NoError(b, err)
	fix, err := sim.NewFixture(nodes, sim.SlicesPublisher)
	require.NoError(b, err)
	o := &openb{dra: &fakeDRA{classes: map[string]*resourceapi.DeviceClass{sim.ClassName: sim.DeviceClass()}, claims: map[string]*resourceapi.ResourceClaim{}}}
	alloc := &structured.AllocatedState{AllocatedDevices: sets.New[structured.DeviceID](), AllocatedSharedDeviceIDs: sets.New[structured.SharedDeviceID](), AggregatedCapacity: structured.NewConsumedCapacityCollection()}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, n := range nodes {
		// One running pod per node whose claim holds part of every GPU.
		running := &resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Name: "run-" + n.Name, Namespace: "ns", UID: types.UID("claim-run-" + n.Name)},
			Status: resourceapi.ResourceClaimStatus{Allocation: &resourceapi.AllocationResult{}}}
		for _, s := range fix.Slices(i) {
			s.UID = types.UID("uid-" + s.Name)
			s.ResourceVersion = "1"
			o.dra.slices = append(o.dra.slices, s)
			for _, d := range s.Spec.Devices {
				id := structured.MakeDeviceID(s.Spec.Driver, s.Spec.Pool.Name, d.Name)
				used := map[resourceapi.QualifiedName]resource.Quantity{"gpu.tierra.dev/compute": *resource.NewQuantity(int64(rng.IntN(8))*125, resource.DecimalSI)}
				share := types.UID(fmt.Sprintf("share-%d", i))
				running.Status.Allocation.Devices.Results = append(running.Status.Allocation.Devices.Results, resourceapi.DeviceRequestAllocationResult{
					Request: "gpu", Driver: s.Spec.Driver, Pool: s.Spec.Pool.Name, Device: d.Name, ShareID: &share, ConsumedCapacity: used})
				alloc.AllocatedSharedDeviceIDs.Insert(structured.MakeSharedDeviceID(id, &share))
				alloc.AggregatedCapacity.Insert(structured.NewDeviceConsumedCapacity(id, used))
			}
		}
		o.dra.claims["ns/"+running.Name] = running
		node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}, Status: v1.NodeStatus{Allocatable: v1.ResourceList{
			v1.ResourceCPU: *resource.NewMilliQuantity(n.MilliCPU, resource.DecimalSI), v1.ResourceMemory: *resource.NewQuantity(n.MemoryMiB<<20, resource.BinarySI)}}}
		ni := framework.NewNodeInfo()
		ni.SetNode(node)
		ni.AddPod(runningPod(n.Name, running.Name))
		o.nodes = append(o.nodes, ni)
	}
	o.dra.alloc = alloc
	spec, err := fix.ClaimSpec(sim.Pod{Name: "p", MilliCPU: 4000, MemoryMiB: 8192, NumGPU: 1, GPUMilli: 250})
	require.NoError(b, err)
	claim := &resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "claim-p"}, Spec: *spec}
	o.dra.claims["ns/p"] = claim
	o.pod = &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: v1.PodSpec{
		ResourceClaims: []v1.PodResourceClaim{{Name: "gpu", ResourceClaimName: &claim.Name}},
		Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
			v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi")}}}},
	}}
	return o
}

// touch changes the pods of one node, as the previous cycle's pod did on
// the node it went to: that node's view is read again.
func (o *openb) touch(b *testing.B, i int) {
	ni := o.nodes[i%len(o.nodes)].(*framework.NodeInfo)
	pod := runningPod(ni.Node().Name, "none")
	pod.Spec.ResourceClaims = nil
	ni.AddPod(pod)
	require.NoError(b, ni.RemovePod(klog.Background(), pod))
}

// runningPod is a pod bound to node that uses the claim.
func runningPod(node, claim string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: claim, Namespace: "ns", UID: types.UID("pod-" + claim)}, Spec: v1.PodSpec{
		NodeName:       node,
		ResourceClaims: []v1.PodResourceClaim{{Name: "gpu", ResourceClaimName: &claim}},
		Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
			v1.ResourceCPU: resource.MustParse("1"), v1.ResourceMemory: resource.MustParse("1Gi")}}}},
	}}
}

func newPlugin(b *testing.B, o *openb) *Plugin {
	b.Helper()
	args, err := decodeArgs(nil)
	require.NoError(b, err)
	p, err := NewWithArgs(context.Background(), args, o.dra)
	require.NoError(b, err)
	return p
}

// BenchmarkScore is the plugin's cost per (pod, node): PreScore once per
// pod over the 1,213 nodes, then Score and NormalizeScore on each; before
// each cycle one node's pods change, as in a stream of pods.
func BenchmarkScore(b *testing.B) {
	o := loadOpenB(b)
	p := newPlugin(b, o)
	ctx := context.Background()
	scores := make(fwk.NodeScoreList, len(o.nodes))
	// A running scheduler has read the slices already.
	yieldCycle(ctx, b, p, o, o.nodes, scores)
	b.ResetTimer()
	for i := range b.N {
		o.touch(b, i)
		yieldCycle(ctx, b, p, o, o.nodes, scores)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(o.nodes)), "ns/node")
}

func yieldCycle(ctx context.Context, b *testing.B, p *Plugin, o *openb, nodes []fwk.NodeInfo, scores fwk.NodeScoreList) {
	state := framework.NewCycleState()
	if st := p.PreScore(ctx, state, o.pod, nodes); !st.IsSuccess() {
		b.Fatal(st.AsError())
	}
	for i, ni := range nodes {
		s, st := p.Score(ctx, state, o.pod, ni)
		if !st.IsSuccess() {
			b.Fatal(st.AsError())
		}
		scores[i] = fwk.NodeScore{Name: ni.Node().Name, Score: s}
	}
	if st := p.NormalizeScore(ctx, state, o.pod, scores[:len(nodes)]); !st.IsSuccess() {
		b.Fatal(st.AsError())
	}
}

// BenchmarkCycle is the DRA pod's scheduling cycle at 1,213 nodes as the
// DynamicResources plugin runs it (PreFilter: the allocated state, copied
// by the claim tracker as in the scheduler, and one allocator; Filter: an
// allocation attempt on every node), without and
// with TierraYield's PreScore, Score and NormalizeScore on the feasible
// nodes. The other default plugins are left out: next to the allocator
// they cost little and do not change with TierraYield.
func BenchmarkCycle(b *testing.B) {
	o := loadOpenB(b)
	p := newPlugin(b, o)
	ctx := context.Background()
	cache := allocator.NewCELCache(64, allocator.SchedulerFeatures)
	classes := allocator.NewClassLister(sim.DeviceClass())
	claim := o.dra.claims["ns/p"]
	filter := func() []fwk.NodeInfo {
		state, err := o.dra.ResourceClaims().GatherAllocatedState()
		require.NoError(b, err)
		a, err := structured.NewAllocator(ctx, allocator.SchedulerFeatures, *state, classes, o.dra.slices, cache)
		require.NoError(b, err)
		var feasible []fwk.NodeInfo
		for _, ni := range o.nodes {
			res, err := a.Allocate(ctx, ni.Node(), []*resourceapi.ResourceClaim{claim})
			if err == nil && len(res) > 0 {
				feasible = append(feasible, ni)
			}
		}
		return feasible
	}
	scores := make(fwk.NodeScoreList, len(o.nodes))
	// A running scheduler has read the slices already.
	yieldCycle(ctx, b, p, o, o.nodes, scores)
	var filterT, yieldT time.Duration
	for _, with := range []bool{false, true} {
		b.Run(fmt.Sprintf("tierrayield=%v", with), func(b *testing.B) {
			feasible := 0
			for i := range b.N {
				o.touch(b, i)
				t0 := time.Now()
				nodes := filter()
				t1 := time.Now()
				if with {
					yieldCycle(ctx, b, p, o, nodes, scores)
				}
				filterT += t1.Sub(t0)
				yieldT += time.Since(t1)
				feasible = len(nodes)
			}
			b.ReportMetric(float64(feasible), "feasible-nodes")
			if with {
				b.ReportMetric(100*float64(yieldT)/float64(filterT), "%-added")
				b.ReportMetric(float64(yieldT.Microseconds())/float64(b.N), "yield-µs/op")
			}
			filterT, yieldT = 0, 0
		})
	}
}
