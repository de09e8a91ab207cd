package nodesim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// leaseDuration and renewEvery follow the kubelet's defaults.
const (
	leaseDuration = 40
	renewEvery    = 10 * time.Second
)

// Node is a running simulated GPU node.
type Node struct {
	opts    Options
	paths   paths
	client  kubernetes.Interface
	plugin  *supervisor
	kubelet *kubelet

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start registers the node, starts the plugin and the kubelet parts, and
// returns once the plugin is registered with the DRA manager and the node is
// schedulable. On error nothing it started is left running.
func Start(ctx context.Context, opts Options) (_ *Node, finalErr error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("node simulator: %w", err)
	}
	rest, err := clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	rest.QPS, rest.Burst = 200, 400
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	n := &Node{opts: opts, paths: newPaths(opts.Dir), client: client}
	if err := n.paths.create(); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(klog.NewContext(context.WithoutCancel(ctx),
		klog.LoggerWithValues(klog.FromContext(ctx), "node", opts.Name)))
	n.cancel = cancel
	defer func() {
		if finalErr != nil {
			finalErr = errors.Join(finalErr, n.Stop())
		}
	}()
	t0 := time.Now()
	if err := n.register(ctx); err != nil {
		return nil, err
	}
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.heartbeat(runCtx) }()
	n.plugin = newSupervisor("plugin", n.pluginCommand, n.paths.pluginLog, opts.Log)
	if err := n.plugin.start(runCtx); err != nil {
		return nil, err
	}
	if n.kubelet, err = startKubelet(runCtx, n); err != nil {
		return nil, err
	}
	if err := n.waitReady(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "node %s (%s) ready in %s\n", opts.Name, opts.Machine, time.Since(t0).Round(time.Millisecond))
	return n, nil
}

// register creates the Node (or updates its labels) and reports it Ready,
// with room for pods.
func (n *Node) register(ctx context.Context) error {
	nodes := n.client.CoreV1().Nodes()
	node, err := nodes.Get(ctx, n.opts.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.opts.Name, Labels: n.labels()}}
		node, err = nodes.Create(ctx, node, metav1.CreateOptions{})
	case err == nil:
		var patch []byte
		if patch, err = json.Marshal(map[string]any{"metadata": map[string]any{"labels": n.labels()}}); err == nil {
			node, err = nodes.Patch(ctx, node.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("register node %s: %w", n.opts.Name, err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourcePods:   resourceQuantity("110"),
		corev1.ResourceCPU:    resourceQuantity("64"),
		corev1.ResourceMemory: resourceQuantity("1Ti"),
	}
	status := corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: n.opts.Name}},
		NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.37.1", OperatingSystem: "linux", Architecture: "amd64"},
		Conditions: []corev1.NodeCondition{readyCondition()},
	}
	// A patch, not an update: the controller manager writes a new node's
	// status too, and an update would race it for the resourceVersion.
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return fmt.Errorf("encode node status: %w", err)
	}
	if _, err := nodes.Patch(ctx, node.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("report node %s Ready: %w", n.opts.Name, err)
	}
	return n.renewLease(ctx)
}

func (n *Node) labels() map[string]string {
	labels := map[string]string{corev1.LabelHostname: n.opts.Name, "kubernetes.io/os": "linux"}
	for k, v := range n.opts.Labels {
		labels[k] = v
	}
	return labels
}

func readyCondition() corev1.NodeCondition {
	now := metav1.Now()
	return corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "tierra node simulator is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}
}

// heartbeat renews the node's Lease, which is how the node lifecycle
// controller tells that the node is alive.
func (n *Node) heartbeat(ctx context.Context) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := n.renewLease(ctx); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Renew node lease")
		}
	}, renewEvery)
}

func (n *Node) renewLease(ctx context.Context) error {
	leases := n.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, n.opts.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: n.opts.Name, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(n.opts.Name),
				LeaseDurationSeconds: ptr.To[int32](leaseDuration), RenewTime: &now},
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
	} else if err == nil {
		lease.Spec.RenewTime = &now
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("renew lease of node %s: %w", n.opts.Name, err)
	}
	return nil
}

// waitReady waits until the plugin is registered with the DRA manager, its
// ResourceSlices are published and the node lifecycle controller has lifted
// the not-ready taint, so the scheduler may place pods there.
func (n *Node) waitReady(ctx context.Context) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if !n.kubelet.registered() {
			return false, nil
		}
		node, err := n.client.CoreV1().Nodes().Get(ctx, n.opts.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if len(node.Spec.Taints) > 0 {
			return false, nil
		}
		return n.slicesPublished(ctx)
	})
	if err != nil {
		return fmt.Errorf("node %s never became ready (registered: %t; plugin log %s): %w",
			n.opts.Name, n.kubelet.registered(), n.paths.pluginLog, err)
	}
	return nil
}

// Stop stops the pod lifecycle, the DRA manager and the plugin. The Node
// object and what is prepared stay, as when a kubelet stops.
func (n *Node) Stop() error {
	if n.cancel != nil {
		n.cancel()
	}
	var err error
	if n.kubelet != nil {
		n.kubelet.stop()
	}
	if n.plugin != nil {
		err = n.plugin.stop()
	}
	n.wg.Wait()
	return err
}

// Name is the node's name.
func (n *Node) Name() string { return n.opts.Name }

// FakeMachineState is the fake machine's state file (MIG instances, compute
// modes), as the plugin leaves it.
func (n *Node) FakeMachineState() string { return n.paths.fakeState }

// CDIDir is where the plugin writes the per-claim CDI specs.
func (n *Node) CDIDir() string { return n.paths.cdi }

// StateDir is the plugin's state directory (checkpoint, MPS directories).
func (n *Node) StateDir() string { return n.paths.state }

// PluginLog is the plugin's log file.
func (n *Node) PluginLog() string { return n.paths.pluginLog }

// RestartPlugin kills the plugin with SIGKILL, as a crash would, and waits
// until its replacement has registered again with the DRA manager.
func (n *Node) RestartPlugin(ctx context.Context) error {
	before := n.plugin.starts()
	if err := n.plugin.kill(); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return n.plugin.starts() > before && n.kubelet.registered(), nil
	})
}
