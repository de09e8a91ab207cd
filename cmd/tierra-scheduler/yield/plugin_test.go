package yield

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/tierra-gpu/tierra/pkg/score"
	"github.com/tierra-gpu/tierra/pkg/sim"
)

// twoNodes is two nodes of one shared GPU each and a pod asking for half a
// GPU; node a runs a pod whose claim holds 300 of its GPU.
func twoNodes(t *testing.T) (*fakeDRA, []fwk.NodeInfo, *v1.Pod, *v1.Pod) {
	t.Helper()
	nodes := []sim.Node{{Name: "a", MilliCPU: 8000, MemoryMiB: 1 << 16, GPUs: 1, Model: "T4"}, {Name: "b", MilliCPU: 8000, MemoryMiB: 1 << 16, GPUs: 1, Model: "T4"}}
	fix, err := sim.NewFixture(nodes, sim.SlicesPublisher)
	require.NoError(t, err)
	dra := &fakeDRA{classes: map[string]*resourceapi.DeviceClass{sim.ClassName: sim.DeviceClass()}, claims: map[string]*resourceapi.ResourceClaim{}, pending: map[types.UID]*resourceapi.AllocationResult{}}
	var infos []fwk.NodeInfo
	for i, n := range nodes {
		for _, s := range fix.Slices(i) {
			s.UID, s.ResourceVersion = types.UID("uid-"+s.Name), "1"
			dra.slices = append(dra.slices, s)
		}
		ni := framework.NewNodeInfo()
		ni.SetNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}, Status: v1.NodeStatus{Allocatable: v1.ResourceList{
			v1.ResourceCPU: resource.MustParse("8"), v1.ResourceMemory: resource.MustParse("64Gi")}}})
		infos = append(infos, ni)
	}
	s := dra.slices[0]
	d := s.Spec.Devices[0]
	share := types.UID("s")
	running := &resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Name: "run", Namespace: "ns", UID: "claim-run"},
		Status: resourceapi.ResourceClaimStatus{Allocation: &resourceapi.AllocationResult{Devices: resourceapi.DeviceAllocationResult{Results: []resourceapi.DeviceRequestAllocationResult{{
			Request: "gpu", Driver: s.Spec.Driver, Pool: s.Spec.Pool.Name, Device: d.Name, ShareID: &share,
			ConsumedCapacity: map[resourceapi.QualifiedName]resource.Quantity{"gpu.tierra.dev/compute": resource.MustParse("300")}}}}}}}
	dra.claims["ns/run"] = running
	runner := runningPod("a", "run")
	infos[0].(*framework.NodeInfo).AddPod(runner)
	spec, err := fix.ClaimSpec(sim.Pod{Name: "p", MilliCPU: 1000, MemoryMiB: 1024, NumGPU: 1, GPUMilli: 500})
	require.NoError(t, err)
	dra.claims["ns/p"] = &resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "claim-p"}, Spec: *spec}
	pod := runningPod("", "p")
	return dra, infos, pod, runner
}

func scoreNodes(t *testing.T, p *Plugin, pod *v1.Pod, nodes []fwk.NodeInfo) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	state := framework.NewCycleState()
	require.True(t, p.PreScore(ctx, state, pod, nodes).IsSuccess())
	scores := make(fwk.NodeScoreList, len(nodes))
	for i, ni := range nodes {
		s, st := p.Score(ctx, state, pod, ni)
		require.True(t, st.IsSuccess())
		scores[i] = fwk.NodeScore{Name: ni.Node().Name, Score: s}
	}
	require.True(t, p.NormalizeScore(ctx, state, pod, scores).IsSuccess())
	out := map[string]int64{}
	for _, s := range scores {
		out[s.Name] = s.Score
	}
	return out
}

// TestViewsFollowThePods checks that a node's view comes from its pods'
// claims (allocated or pending) and is read again when its pods change.
func TestViewsFollowThePods(t *testing.T) {
	dra, nodes, pod, runner := twoNodes(t)
	p, err := NewWithArgs(context.Background(), Args{Scorer: score.BestFit, Driver: "gpu.tierra.dev"}, dra)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"a": 100, "b": 0}, scoreNodes(t, p, pod, nodes), "best fit: the GPU with 700 left")

	// The claim's allocation is only pending (the binding cycle has not
	// written it): the view must still count it once the node changes.
	alloc := dra.claims["ns/run"].Status.Allocation
	pendingClaim := dra.claims["ns/run"].DeepCopy()
	pendingClaim.Status.Allocation = nil
	dra.claims["ns/run"] = pendingClaim
	dra.pending[pendingClaim.UID] = alloc
	ni := nodes[0].(*framework.NodeInfo)
	require.NoError(t, ni.RemovePod(klog.Background(), runner))
	ni.AddPod(runner)
	assert.Equal(t, map[string]int64{"a": 100, "b": 0}, scoreNodes(t, p, pod, nodes), "the pending allocation counts")

	require.NoError(t, ni.RemovePod(klog.Background(), runner))
	assert.Equal(t, map[string]int64{"a": 100, "b": 100}, scoreNodes(t, p, pod, nodes), "the pod left: both GPUs are free")
}
