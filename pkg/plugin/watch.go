package plugin

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

// watch starts what makes the plugin republish: an informer on its own
// Node (labels), one on the TierPolicy when the policy came from the API,
// and the GPUs' events. Everything stops when ctx is cancelled.
func (d *Driver) watch(ctx context.Context, cfg Config, deps Deps, policyFromAPI bool) error {
	byName := func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.NodeName).String()
	}
	nodes := informers.NewSharedInformerFactoryWithOptions(deps.Client, 0, informers.WithTweakListOptions(byName))
	if _, err := nodes.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { d.nodeChanged(ctx, cfg.NodeName, obj) },
		UpdateFunc: func(_, obj any) { d.nodeChanged(ctx, cfg.NodeName, obj) },
	}); err != nil {
		return fmt.Errorf("watch node: %w", err)
	}
	nodes.Start(ctx.Done())
	d.stops = append(d.stops, nodes.Shutdown)
	if policyFromAPI && deps.Dynamic != nil {
		policyName := func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.TierPolicy).String()
		}
		policies := dynamicinformer.NewFilteredDynamicSharedInformerFactory(deps.Dynamic, 0, metav1.NamespaceAll, policyName)
		if _, err := policies.ForResource(v1alpha1.TierPolicyResource).Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { d.policyChanged(ctx, cfg.TierPolicy, obj) },
			UpdateFunc: func(_, obj any) { d.policyChanged(ctx, cfg.TierPolicy, obj) },
		}); err != nil {
			return fmt.Errorf("watch TierPolicy: %w", err)
		}
		policies.Start(ctx.Done())
		d.stops = append(d.stops, policies.Shutdown)
	}
	return d.watchHardware(ctx)
}

func (d *Driver) nodeChanged(ctx context.Context, name string, obj any) {
	if node, ok := obj.(*corev1.Node); ok && node.Name == name {
		d.pub.setLabels(ctx, node.Labels)
	}
}

func (d *Driver) policyChanged(ctx context.Context, name string, obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || u.GetName() != name {
		return
	}
	p, err := checkedPolicy(u)
	if err != nil {
		// Keep publishing by the last good policy.
		klog.FromContext(ctx).Error(err, "Ignoring an invalid TierPolicy update")
		return
	}
	d.pub.setPolicy(ctx, p)
}

// watchHardware feeds the GPUs' events to the health monitor (health.go):
// it republishes when NVML reports a GPU lost or unavailable (discovery
// then publishes the GPUs that are left) and when an event's classification
// taints devices, or their quiet period clears them. NVML has no event for
// a MIG mode change: that takes a GPU reset, which loses the GPU first.
// Without an event watch the health loop still runs, to clear the taints
// restored from before a restart when their time comes.
func (d *Driver) watchHardware(ctx context.Context) error {
	w, ok := d.pub.gpus.(nvgpu.EventWatcher)
	if !ok {
		d.startHealth(ctx, nil)
		return nil
	}
	events, err := w.Events(ctx)
	if err != nil {
		// Not fatal: the node is served; only republishing on hardware
		// changes is lost.
		klog.FromContext(ctx).Error(err, "Not watching GPU events")
		d.startHealth(ctx, nil)
		return nil
	}
	d.startHealth(ctx, events)
	return nil
}
