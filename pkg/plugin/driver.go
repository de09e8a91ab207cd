package plugin

import (
	"context"
	"fmt"
	"sync"

	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/pkg/prepare"
)

// Driver is the kubelet plugin's DRAPlugin: it prepares claims
// concurrently, one goroutine per claim (pkg/prepare locks per GPU).
type Driver struct {
	prep   *prepare.Preparer
	helper *kubeletplugin.Helper
	close  func() error
}

var _ kubeletplugin.DRAPlugin = (*Driver)(nil)

// PrepareResourceClaims implements kubeletplugin.DRAPlugin. Each claim gets
// its own result; one claim's error does not fail the others.
func (d *Driver) PrepareResourceClaims(ctx context.Context, claims []*resourceapi.ResourceClaim) (map[types.UID]kubeletplugin.PrepareResult, error) {
	results := make(map[types.UID]kubeletplugin.PrepareResult, len(claims))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, claim := range claims {
		wg.Go(func() {
			res := d.prepareOne(ctx, claim)
			mu.Lock()
			defer mu.Unlock()
			results[claim.UID] = res
		})
	}
	wg.Wait()
	return results, nil
}

func (d *Driver) prepareOne(ctx context.Context, claim *resourceapi.ResourceClaim) kubeletplugin.PrepareResult {
	devs, err := d.prep.Prepare(ctx, claim)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Prepare failed", "claim", klog.KObj(claim))
		return kubeletplugin.PrepareResult{Err: err}
	}
	res := kubeletplugin.PrepareResult{Devices: make([]kubeletplugin.Device, 0, len(devs))}
	for _, dev := range devs {
		res.Devices = append(res.Devices, kubeletplugin.Device{
			Requests: []string{dev.Request}, PoolName: dev.Pool, DeviceName: dev.Device,
			CDIDeviceIDs: dev.CDIDeviceIDs, ShareID: dev.ShareID,
		})
	}
	return res
}

// UnprepareResourceClaims implements kubeletplugin.DRAPlugin.
func (d *Driver) UnprepareResourceClaims(ctx context.Context, claims []kubeletplugin.NamespacedObject) (map[types.UID]error, error) {
	results := make(map[types.UID]error, len(claims))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, claim := range claims {
		wg.Go(func() {
			err := d.prep.Unprepare(ctx, string(claim.UID))
			if err != nil {
				klog.FromContext(ctx).Error(err, "Unprepare failed", "claim", claim.NamespacedName, "uid", claim.UID)
			}
			mu.Lock()
			defer mu.Unlock()
			results[claim.UID] = err
		})
	}
	wg.Wait()
	return results, nil
}

// HandleError implements kubeletplugin.DRAPlugin: background errors of the
// helper (e.g. publishing slices) are logged; the helper retries.
func (d *Driver) HandleError(ctx context.Context, err error, msg string) {
	klog.FromContext(ctx).Error(err, msg)
}

// WatchHealthStatus implements kubeletplugin.DRAPlugin: health reporting
// (pkg/health) does not exist yet.
func (d *Driver) WatchHealthStatus(context.Context, chan<- kubeletplugin.DeviceHealthReport) error {
	return kubeletplugin.ErrHealthNotSupported
}

// Stop stops serving the kubelet and releases the GPUs.
func (d *Driver) Stop() error {
	if d.helper != nil {
		d.helper.Stop()
	}
	if d.close != nil {
		return d.close()
	}
	return nil
}

// namespaceLabels reads namespace labels for tenant resolution.
type namespaceLabels struct{ client kubernetes.Interface }

func (n namespaceLabels) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	ns, err := n.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get namespace %s: %w", name, err)
	}
	return ns.Labels, nil
}
