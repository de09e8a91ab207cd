// Package sim tests tierra sim's --kubeconfig path against a real
// kube-apiserver: the nodes and the slices pkg/slices publishes are created
// there, read back the way the CLI reads them, and replayed.
package sim

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/tierra-gpu/tierra/pkg/plan"
	"github.com/tierra-gpu/tierra/pkg/sim"
	"github.com/tierra-gpu/tierra/test/cluster"
)

const data = "../../pkg/sim/testdata/mig/"

// TestLiveClusterReplaysPublishedDevices publishes a MIG-era node list
// (H100/H200, a Whole tier and a MIG tier) with pkg/slices, creates the
// Nodes, ResourceSlices and DeviceClasses in a real kube-apiserver, reads
// them back through a kubeconfig as tierra sim --kubeconfig does, and
// requires the live replay to match the offline one seed for seed.
func TestLiveClusterReplaysPublishedDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: starts a control plane")
	}
	if err := cluster.CheckBinaries("", false); err != nil {
		t.Skipf("skipping: %v; run %s", err, cluster.BuildCommand)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes, err := sim.LoadNodes(data + "nodes.csv")
	require.NoError(t, err)
	// The live cluster lists nodes by name: publish them in that order.
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	pods, err := sim.LoadPods(data + "pods.csv")
	require.NoError(t, err)
	policy, err := plan.LoadPolicy(data + "mig.yaml")
	require.NoError(t, err)
	offline, err := sim.PublishCluster(ctx, nodes, policy)
	require.NoError(t, err)

	dir, err := os.MkdirTemp("", "tierra-sim-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c, err := cluster.Start(ctx, cluster.Options{StateDir: filepath.Join(dir, "cluster"), StopWithParent: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	cs, err := c.Clientset()
	require.NoError(t, err)
	create(ctx, t, cs, offline)

	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	require.NoError(t, err)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	live, err := sim.LiveCluster(ctx, client)
	require.NoError(t, err)
	assert.Equal(t, offline.GPUs, live.GPUs)
	assert.ElementsMatch(t, offline.Tiers, live.Tiers)
	require.Len(t, live.Nodes, len(offline.Nodes))
	for i, n := range live.Nodes {
		assert.Equal(t, offline.Nodes[i].Name, n.Name)
		assert.Equal(t, offline.Nodes[i].MilliCPU, n.MilliCPU)
		assert.Equal(t, offline.Nodes[i].Memory, n.Memory)
		assert.Equal(t, len(offline.Nodes[i].Slices), len(n.Slices), n.Name)
	}

	opts := sim.CompareOptions{Scorers: []string{sim.ScorerFrag, sim.ScorerDefault}, Seeds: []int64{42, 43}, MaxLoad: 1.3, Parallel: 2}
	tr := &sim.Trace{Name: "mig", Pods: pods}
	want, err := sim.Compare(ctx, []*sim.Cluster{offline}, tr, opts)
	require.NoError(t, err)
	got, err := sim.Compare(ctx, []*sim.Cluster{live}, tr, opts)
	require.NoError(t, err)
	require.Len(t, got.Rows, len(want.Rows))
	for i, r := range got.Rows {
		w := want.Rows[i]
		w.Cluster = sim.LiveName
		byName(w.Tiers)
		byName(r.Tiers)
		assert.Equal(t, w, r, "scorer %s", r.Scorer)
		assert.Greater(t, r.AllocAtMax, 50.0)
		assert.Zero(t, r.Divergence)
	}
	for _, r := range got.Rows {
		t.Logf("live %s: alloc@130 %.2f%%, held %.2f%%, %.1f GPUs unallocated", r.Scorer, r.AllocAtMax, r.HeldAtMax, r.UnallocGPUs)
	}
}

// create makes the cluster's objects in the apiserver: each node with its
// allocatable cpu and memory, its slices as published, and the classes.
func create(ctx context.Context, t *testing.T, cs kubernetes.Interface, cl *sim.Cluster) {
	t.Helper()
	for _, dc := range cl.Classes {
		_, err := cs.ResourceV1().DeviceClasses().Create(ctx, dc, metav1.CreateOptions{})
		require.NoError(t, err, dc.Name)
	}
	for _, n := range cl.Nodes {
		alloc := corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(n.MilliCPU, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(n.Memory, resource.BinarySI),
			corev1.ResourcePods:   resource.MustParse("110"),
		}
		_, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels}}, metav1.CreateOptions{})
		require.NoError(t, err, n.Name)
		// The node controllers write the new node too: retry on conflict.
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			node, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			node.Status.Capacity, node.Status.Allocatable = alloc, alloc
			_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
			return err
		})
		require.NoError(t, err, n.Name)
		for _, s := range n.Slices {
			s = s.DeepCopy()
			s.UID, s.ResourceVersion = "", ""
			_, err := cs.ResourceV1().ResourceSlices().Create(ctx, s, metav1.CreateOptions{})
			require.NoError(t, err, s.Name)
		}
	}
}

func byName(rows []sim.TierRow) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].Tier < rows[j].Tier })
}
