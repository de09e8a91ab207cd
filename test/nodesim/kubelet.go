package nodesim

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
	"k8s.io/kubernetes/pkg/kubelet/cm/dra"
	draplugin "k8s.io/kubernetes/pkg/kubelet/cm/dra/plugin"
	"k8s.io/kubernetes/pkg/kubelet/config"
	"k8s.io/kubernetes/pkg/kubelet/pluginmanager"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// kubelet is the kubelet's DRA manager and plugin manager for one node, and
// the pod lifecycle that drives them.
type kubelet struct {
	mgr         *dra.Manager
	plugins     *draplugin.DRAPluginManager
	broadcaster record.EventBroadcaster
	pods        *podWorker
	stopCh      chan struct{}
}

// startKubelet starts the DRA manager, registers it for DRA plugins with a
// plugin manager that watches the node's registry directory, and starts the
// pod lifecycle.
func startKubelet(ctx context.Context, n *Node) (*kubelet, error) {
	logger := klog.FromContext(ctx)
	mgr, err := dra.NewManager(logger, n.client, n.paths.kubelet)
	if err != nil {
		return nil, fmt.Errorf("DRA manager: %w", err)
	}
	k := &kubelet{mgr: mgr, stopCh: make(chan struct{})}
	k.broadcaster = record.NewBroadcaster(record.WithContext(ctx))
	k.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: n.client.CoreV1().Events("")})
	recorder := k.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: n.opts.Name})
	k.pods = newPodWorker(n.client, n.opts.Name, mgr, recorder, newContainers(n.opts.Images, n.opts.Dir, n.opts.Log))
	k.pods.gpu = newGPUProcesses(n.paths.fakeProcesses, n.paths.fakeProc, n.MetricsURL())
	ready := config.NewSourcesReady(func(sets.Set[string]) bool { return k.pods.synced() })
	getNode := func(ctx context.Context) (*corev1.Node, error) {
		return n.client.CoreV1().Nodes().Get(ctx, n.opts.Name, metav1.GetOptions{})
	}
	if err := mgr.Start(ctx, k.pods.activePods, getNode, ready); err != nil {
		return nil, fmt.Errorf("start DRA manager: %w", err)
	}
	handler, ok := mgr.GetWatcherHandler().(*draplugin.DRAPluginManager)
	if !ok {
		return nil, fmt.Errorf("DRA manager's plugin handler is a %T", mgr.GetWatcherHandler())
	}
	k.plugins = handler
	pm := pluginmanager.NewPluginManager(n.paths.registry, recorder)
	pm.AddHandler(registerapi.DRAPlugin, handler)
	go pm.Run(ctx, ready, k.stopCh)
	go k.reportHealth(ctx, n)
	if err := k.pods.start(ctx); err != nil {
		k.stop()
		return nil, err
	}
	return k, nil
}

// registered reports whether the plugin is registered with the DRA manager.
func (k *kubelet) registered() bool {
	_, err := k.plugins.GetPlugin(v1alpha1.DriverName)
	return err == nil
}

func (k *kubelet) stop() {
	close(k.stopCh)
	k.pods.stop()
	k.mgr.Stop()
	k.broadcaster.Shutdown()
}

// slicesPublished reports whether the node's ResourceSlices for the driver
// exist.
func (n *Node) slicesPublished(ctx context.Context) (bool, error) {
	list, err := n.client.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{
		FieldSelector: resourceapi.ResourceSliceSelectorNodeName + "=" + n.opts.Name + "," +
			resourceapi.ResourceSliceSelectorDriver + "=" + v1alpha1.DriverName,
	})
	if err != nil {
		return false, err
	}
	return len(list.Items) > 0, nil
}

func resourceQuantity(s string) resource.Quantity { return resource.MustParse(s) }

// retryBackoff bounds the pod lifecycle's retries of a failed prepare.
const (
	retryBase = 200 * time.Millisecond
	retryMax  = 10 * time.Second
)
