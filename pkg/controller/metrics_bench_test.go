package controller

import (
	"fmt"
	"testing"
	"time"

	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// BenchmarkControllerMetrics is one scrape's computation on 200 nodes
// (100 DGX H200 of whole training GPUs, half of them allocated; 50 MIG DGX
// H200; 50 nodes of 4 time-sliced L4) with 100 pending claims.
func BenchmarkControllerMetrics(b *testing.B) {
	policy := tierratest.StandardPolicy()
	var rs []*resourceapi.ResourceSlice
	var claims []*resourceapi.ResourceClaim
	add := func(n slices.Node) {
		dr, err := slices.Build(n, policy)
		if err != nil {
			b.Fatal(err)
		}
		rs = append(rs, slices.ResourceSlices(n.Name, dr)...)
	}
	for i := range 100 {
		name := fmt.Sprintf("train-%d", i)
		add(slices.Node{Name: name, Labels: map[string]string{"tierra.dev/pool": "training"}, Machine: tierratest.DGXH200(false)})
		for g := range 4 {
			c := tierratest.MakeClaim(fmt.Sprintf("t-%d-%d", i, g), "lab").Request("gpu", tiers.ClassName(v1alpha1.TierTraining)).Obj()
			c.Status.Allocation = &resourceapi.AllocationResult{Devices: resourceapi.DeviceAllocationResult{
				Results: []resourceapi.DeviceRequestAllocationResult{{Request: "gpu", Driver: driverName, Pool: name, Device: fmt.Sprintf("gpu-%d", g)}},
			}}
			claims = append(claims, c)
		}
	}
	for i := range 50 {
		add(slices.Node{Name: fmt.Sprintf("infer-%d", i), Machine: tierratest.DGXH200(true)})
		add(slices.Node{Name: fmt.Sprintf("dev-%d", i), Machine: tierratest.Machine(4, func(i int) inventory.GPU { return tierratest.L4(i) })})
	}
	for i := range rs {
		rs[i].UID = types.UID(rs[i].Name)
	}
	for i := range 100 {
		c := tierratest.MakeClaim(fmt.Sprintf("p-%d", i), "lab").Request("gpu", tiers.ClassName(v1alpha1.TierInference)).
			Selector(`device.attributes["gpu.tierra.dev"].migProfile == "1g.18gb"`).Obj()
		c.CreationTimestamp = metav1.NewTime(time.Unix(0, 0))
		claims = append(claims, c)
	}
	classes, err := tiers.Render(policy)
	if err != nil {
		b.Fatal(err)
	}
	in := MetricsInput{Policy: policy, Slices: rs, Claims: claims, Classes: classes, Now: time.Unix(100, 0)}
	model := newStrandedModel()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		snap := observeMetrics(in, model)
		if len(snap.Nodes) != 200 {
			b.Fatalf("%d tier nodes, want 200", len(snap.Nodes))
		}
	}
}
