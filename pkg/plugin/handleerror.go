package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/slices"
)

// ReasonSlicesWithdrawn is the Warning Event on the node when the
// apiserver dropped fields of the published slices and the devices that
// need them were withdrawn.
const ReasonSlicesWithdrawn = "DevicesWithdrawn"

// HandleError implements kubeletplugin.DRAPlugin's contract for background
// errors. Every error is logged. Fields the apiserver dropped
// (resourceslice.DroppedFieldsError: a DRA feature gate is off) withdraw
// the devices that need them, so the scheduler can never overbook a GPU
// through what it cannot see (slices.Withdraw), and say so in a Warning
// Event on the node. Other recoverable errors (kubeletplugin.ErrRecoverable:
// publishing, which the helper retries) are only logged. A fatal error (the
// gRPC servers the kubelet talks to failed) stops the plugin: Run returns
// it and the process exits, for the kubelet to restart it.
func (d *Driver) HandleError(ctx context.Context, err error, msg string) {
	utilruntime.HandleErrorWithContext(ctx, err, msg)
	var dropped *resourceslice.DroppedFieldsError
	if errors.As(err, &dropped) {
		if d.pub != nil {
			d.pub.unsupported(ctx, dropped.DisabledFeatures())
		}
		return
	}
	if errors.Is(err, kubeletplugin.ErrRecoverable) {
		return
	}
	d.fail(fmt.Errorf("%s: %w", msg, err))
}

// fail records the first fatal error and tells Run.
func (d *Driver) fail(err error) {
	d.failOnce.Do(func() {
		d.failErr = err
		close(d.failed)
	})
}

// Failed is closed when a fatal background error stopped the plugin from
// serving; Err then says which.
func (d *Driver) Failed() <-chan struct{} { return d.failed }

// Err is the fatal background error, nil while there is none.
func (d *Driver) Err() error {
	select {
	case <-d.failed:
		return d.failErr
	default:
		return nil
	}
}

// unsupported withdraws the devices that need the apiserver features off
// (once per new feature) and republishes.
func (p *publisher) unsupported(ctx context.Context, features []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fresh := sets.New(features...).Difference(p.disabled)
	if fresh.Len() == 0 {
		return
	}
	p.disabled = p.disabled.Union(fresh)
	logger := klog.FromContext(ctx)
	logger.Info("The apiserver dropped fields of the published ResourceSlices; withdrawing the devices that need them",
		"disabledFeatures", sets.List(p.disabled))
	if p.helper == nil {
		return
	}
	p.republish(ctx, metrics.CauseDroppedFields, "apiserver dropped fields")
	if p.warn != nil {
		p.warn(ctx, ReasonSlicesWithdrawn, fmt.Sprintf(
			"The kube-apiserver dropped fields of this node's ResourceSlices: feature gates %s are off. "+
				"%d devices that need them are not published; enable the gates to publish them.",
			strings.Join(sets.List(p.disabled), ", "), p.withdrawn))
	}
}

// withdraw takes out of resources what the apiserver cannot represent
// (slices.Withdraw); the caller holds mu.
func (p *publisher) withdraw(resources resourceslice.DriverResources) resourceslice.DriverResources {
	if p.disabled.Len() == 0 {
		return resources
	}
	out, gone := slices.Withdraw(resources, p.disabled)
	p.withdrawn = gone
	return out
}

// nodeWarner records Warning Events on the node.
func nodeWarner(client kubernetes.Interface, node *corev1.Node) func(ctx context.Context, reason, message string) {
	return func(ctx context.Context, reason, message string) {
		nodeEvent(ctx, client, node, corev1.EventTypeWarning, reason, message)
	}
}
