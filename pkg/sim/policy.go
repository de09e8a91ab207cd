package sim

import (
	"context"
	"fmt"
	"strings"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

// Cluster is a published cluster: each node's host resources and the
// ResourceSlices the kubelet plugin publishes for it, the DeviceClasses
// claims name, and the tiers its devices serve. PublishCluster makes one
// from a node list and a TierPolicy, LiveCluster reads one from a
// running cluster.
type Cluster struct {
	// Name labels the cluster in reports: the policy's name, or "live".
	Name    string
	Nodes   []ClusterNode
	Classes []*resourceapi.DeviceClass
	// Tiers are the tiers the simulated claims may use, in policy order.
	Tiers []TierInfo
	// Admission are the selectors tenancy admission adds to every request
	// of a claim in a namespace of no tenant (the simulated claims').
	Admission []string
	// GPUs counts the nodes' physical GPUs, published or not: a GPU no
	// tier serves is idle capacity.
	GPUs int
}

// ClusterNode is one node: its labels, allocatable cpu (milli) and memory
// (bytes), and its ResourceSlices for the driver.
type ClusterNode struct {
	Name             string
	Labels           map[string]string
	MilliCPU, Memory int64
	Slices           []*resourceapi.ResourceSlice
}

// TierInfo is one tier as the claims see it: how it is partitioned and the
// DeviceClass that selects its devices.
type TierInfo struct {
	Name         string
	Partitioning v1alpha1.Partitioning
	Class        string
}

// PublishCluster publishes every node of the list under the policy exactly
// as the kubelet plugin does (pkg/slices.Build over the node's machine)
// and renders the policy's DeviceClasses (pkg/tiers.Render). A GPU whose
// tier is MIG is put in MIG mode, the admin's step before adopting such a
// policy, unless the node list's mig column pins the mode; a MIG tier on a
// GPU not in MIG mode (or not MIG-capable) publishes it whole, as the
// plugin does.
func PublishCluster(ctx context.Context, nodes []Node, policy *v1alpha1.TierPolicy) (*Cluster, error) {
	if policy == nil {
		return nil, fmt.Errorf("publish cluster: no TierPolicy")
	}
	classes, err := tiers.Render(policy)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", policy.Name, err)
	}
	cl := &Cluster{Name: policy.Name, Classes: classes, Admission: slices.AdmissionSelectors(policy, slices.OpenTenant)}
	for _, t := range policy.Spec.Tiers {
		if tenancy.Allowed(policy, tenancy.Open, t.Name) {
			cl.Tiers = append(cl.Tiers, TierInfo{Name: t.Name, Partitioning: t.Partitioning, Class: t.DeviceClassName()})
		}
	}
	for i := range nodes {
		cn, err := publishNode(ctx, nodes[i], policy)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", policy.Name, err)
		}
		cl.Nodes = append(cl.Nodes, cn)
		cl.GPUs += nodes[i].GPUs
	}
	return cl, nil
}

func publishNode(ctx context.Context, n Node, policy *v1alpha1.TierPolicy) (ClusterNode, error) {
	lbls := nodeLabels(n)
	plain, err := nodeMachine(ctx, n, func(int) bool { return false })
	if err != nil {
		return ClusterNode{}, err
	}
	migOn := func(i int) bool {
		if n.MIG != nil {
			return *n.MIG
		}
		g := plain.GPUs[i]
		t, err := policy.TierFor(g.ProductName, g.MemoryBytes, labels.Set(lbls))
		return err == nil && t != nil && t.Partitioning == v1alpha1.PartitioningMIG
	}
	m, err := nodeMachine(ctx, n, migOn)
	if err != nil {
		return ClusterNode{}, err
	}
	res, err := slices.Build(slices.Node{Name: n.Name, Labels: lbls, Machine: m}, policy)
	if err != nil {
		return ClusterNode{}, fmt.Errorf("publish node %s: %w", n.Name, err)
	}
	rs := slices.ResourceSlices(n.Name, res)
	for _, s := range rs {
		// The scorer's inventory tells slices apart by UID and version.
		s.UID, s.ResourceVersion = types.UID(s.Name), "1"
	}
	return ClusterNode{Name: n.Name, Labels: lbls, MilliCPU: n.MilliCPU, Memory: n.MemoryMiB << 20, Slices: rs}, nil
}

// tierOrder is the tiers a pod's claim may use: those of the first
// partitioning, in the pod's order of preference, that the cluster has.
// A mig_profile pod prefers MIG, then Shared (its slices' compute share),
// then Whole; another fractional pod Shared, MIG, Whole; a whole-GPU pod
// Whole, Shared (the full compute share), MIG (the 7g profile). Tiers of
// one partitioning keep the policy's order.
func (c *Cluster) tierOrder(p Pod) []TierInfo {
	order := []v1alpha1.Partitioning{v1alpha1.PartitioningShared, v1alpha1.PartitioningMIG, v1alpha1.PartitioningWhole}
	switch {
	case p.MIGSlices > 0:
		order = []v1alpha1.Partitioning{v1alpha1.PartitioningMIG, v1alpha1.PartitioningShared, v1alpha1.PartitioningWhole}
	case !p.Fractional():
		order = []v1alpha1.Partitioning{v1alpha1.PartitioningWhole, v1alpha1.PartitioningShared, v1alpha1.PartitioningMIG}
	}
	for _, part := range order {
		var out []TierInfo
		for _, t := range c.Tiers {
			if t.Partitioning == part {
				out = append(out, t)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// TierNames lists the cluster's tier names in order.
func (c *Cluster) TierNames() []string {
	out := make([]string, len(c.Tiers))
	for i, t := range c.Tiers {
		out[i] = t.Name
	}
	return out
}

// String describes the cluster in one line.
func (c *Cluster) String() string {
	return fmt.Sprintf("%s: %d nodes, %d GPUs, tiers %s", c.Name, len(c.Nodes), c.GPUs, strings.Join(c.TierNames(), ", "))
}
