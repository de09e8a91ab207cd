package sim

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// LiveName names the cluster LiveCluster reads.
const LiveName = "live"

// LiveCluster reads a running cluster: its schedulable Nodes (labels,
// allocatable cpu and memory), the driver's node-local ResourceSlices and
// the DeviceClasses, so that a workload replays on exactly the devices the
// plugin published there. The tiers are those the devices name (tier and
// partitioning attributes), in name order (the slices do not say the
// policy's); each tier's class <tier>.gpu.tierra.dev must exist. What is allocated in the cluster now is
// not read: the replay starts from empty devices.
func LiveCluster(ctx context.Context, client kubernetes.Interface) (*Cluster, error) {
	logger := klog.FromContext(ctx)
	nodeList, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	sliceList, err := client.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list resource slices: %w", err)
	}
	classList, err := client.ResourceV1().DeviceClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list device classes: %w", err)
	}
	byNode := map[string][]*resourceapi.ResourceSlice{}
	var ours []*resourceapi.ResourceSlice
	for i := range sliceList.Items {
		s := &sliceList.Items[i]
		if s.Spec.Driver != DriverName || s.Spec.NodeName == nil || *s.Spec.NodeName == "" {
			continue
		}
		byNode[*s.Spec.NodeName] = append(byNode[*s.Spec.NodeName], s)
		ours = append(ours, s)
	}
	cl := &Cluster{Name: LiveName, Admission: []string{tslices.TenantSelector(tslices.OpenTenant)}}
	for i := range classList.Items {
		cl.Classes = append(cl.Classes, &classList.Items[i])
	}
	nodes := nodeList.Items
	slices.SortFunc(nodes, func(a, b v1.Node) int { return strings.Compare(a.Name, b.Name) })
	for _, n := range nodes {
		if n.Spec.Unschedulable {
			logger.V(2).Info("Skipping unschedulable node", "node", n.Name)
			continue
		}
		rs := byNode[n.Name]
		slices.SortFunc(rs, func(a, b *resourceapi.ResourceSlice) int { return cmp.Compare(a.Name, b.Name) })
		cpu, mem := n.Status.Allocatable.Cpu(), n.Status.Allocatable.Memory()
		cl.Nodes = append(cl.Nodes, ClusterNode{Name: n.Name, Labels: n.Labels, MilliCPU: cpu.MilliValue(), Memory: mem.Value(), Slices: rs})
	}
	if err := cl.liveTiers(ours); err != nil {
		return nil, err
	}
	logger.V(1).Info("Read live cluster", "nodes", len(cl.Nodes), "slices", len(ours), "gpus", cl.GPUs, "tiers", cl.TierNames())
	return cl, nil
}

// liveTiers finds the tiers and the physical GPUs the published devices
// serve.
func (cl *Cluster) liveTiers(rs []*resourceapi.ResourceSlice) error {
	index := tslices.Index(rs)
	seen := map[string]bool{}
	gpus := map[tslices.DeviceKey]bool{}
	for _, n := range cl.Nodes {
		for _, s := range n.Slices {
			for _, d := range s.Spec.Devices {
				pub, ok := index[tslices.DeviceKey{Pool: s.Spec.Pool.Name, Device: d.Name}]
				if !ok {
					continue
				}
				gpus[pub.GPU] = true
				if seen[pub.Tier] {
					continue
				}
				seen[pub.Tier] = true
				part := v1alpha1.Partitioning(tslices.StringAttribute(d, tslices.AttrPartitioning))
				cl.Tiers = append(cl.Tiers, TierInfo{Name: pub.Tier, Partitioning: part, Class: tiers.ClassName(pub.Tier)})
			}
		}
	}
	cl.GPUs = len(gpus)
	slices.SortFunc(cl.Tiers, func(a, b TierInfo) int { return strings.Compare(a.Name, b.Name) })
	for _, t := range cl.Tiers {
		if !slices.ContainsFunc(cl.Classes, func(c *resourceapi.DeviceClass) bool { return c.Name == t.Class }) {
			return fmt.Errorf("live cluster: devices serve tier %q but DeviceClass %s does not exist (tierra-controller renders it from the TierPolicy)", t.Name, t.Class)
		}
	}
	return nil
}
