package plugin

import (
	"context"
	"errors"
	"sync"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/prepare"
)

// Driver is the kubelet plugin's DRAPlugin: it prepares claims
// concurrently, one goroutine per claim (pkg/prepare locks per GPU).
type Driver struct {
	prep   *prepare.Preparer
	helper *kubeletplugin.Helper
	pub    *publisher
	health healthMonitor
	// lock is held shared by every prepare and unprepare, and exclusive
	// by the startup reconcile of a plugin that starts beside this one.
	lock *checkpoint.StateLock
	// cancel stops the watches; stops shuts their informers down and wg
	// waits for the GPU event loop.
	cancel context.CancelFunc
	stops  []func()
	wg     sync.WaitGroup
	close  func() error

	stopOnce sync.Once
	stopErr  error

	// metrics counts requests (nil: no metrics); metricsAddr is where they
	// are served. store is the checkpoint, read for a request's mode.
	metrics     *metrics.Plugin
	metricsAddr string
	store       *checkpoint.Store

	// failed is closed, with failErr set, on the first fatal background
	// error (HandleError); Run then stops the plugin and returns it.
	failOnce sync.Once
	failed   chan struct{}
	failErr  error
}

var _ kubeletplugin.DRAPlugin = (*Driver)(nil)

// PrepareResourceClaims implements kubeletplugin.DRAPlugin. Each claim gets
// its own result; one claim's error does not fail the others.
func (d *Driver) PrepareResourceClaims(ctx context.Context, claims []*resourceapi.ResourceClaim) (map[types.UID]kubeletplugin.PrepareResult, error) {
	release, err := d.lock.Shared()
	if err != nil {
		return nil, err
	}
	defer release()
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
	req := d.metrics.Start(metrics.OpPrepare)
	devs, err := d.prep.Prepare(ctx, claim)
	if d.metrics != nil {
		req.Done(d.claimMode(claim, err == nil), ErrorReason(err))
	}
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
	release, err := d.lock.Shared()
	if err != nil {
		return nil, err
	}
	defer release()
	results := make(map[types.UID]error, len(claims))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, claim := range claims {
		wg.Go(func() {
			err := d.unprepareOne(ctx, string(claim.UID))
			if err != nil {
				klog.FromContext(ctx).Error(err, "Unprepare failed", "claim", claim.NamespacedName, "uid", claim.UID)
			}
			mu.Lock()
			defer mu.Unlock()
			results[claim.UID] = err
		})
	}
	wg.Wait()
	d.pub.claimsEnded(ctx)
	return results, nil
}

func (d *Driver) unprepareOne(ctx context.Context, uid string) error {
	if d.metrics == nil {
		return d.prep.Unprepare(ctx, uid)
	}
	mode := metrics.ModeUnknown
	if rec, ok := d.store.Get(uid); ok {
		mode = recordMode(rec)
	}
	req := d.metrics.Start(metrics.OpUnprepare)
	err := d.prep.Unprepare(ctx, uid)
	req.Done(mode, ErrorReason(err))
	return err
}

// WatchHealthStatus implements kubeletplugin.DRAPlugin (KEP-4680): the
// health of every prepared device, Healthy, Unhealthy (a fault that taints
// it, or its GPU does not answer NVML) or Unknown (before the GPU events
// are watched), at once, on every change and every 10 s (health.go).
func (d *Driver) WatchHealthStatus(ctx context.Context, reports chan<- kubeletplugin.DeviceHealthReport) error {
	return d.watchHealth(ctx, reports)
}

// Stop stops serving the kubelet and watching, and releases the state
// lock and the GPUs. Stopping again returns the first result.
func (d *Driver) Stop() error {
	d.stopOnce.Do(func() { d.stopErr = d.stop() })
	return d.stopErr
}

func (d *Driver) stop() error {
	if d.cancel != nil {
		d.cancel()
	}
	for _, stop := range d.stops {
		stop()
	}
	if d.helper != nil {
		d.helper.Stop()
	}
	d.wg.Wait()
	var errs []error
	if d.lock != nil {
		errs = append(errs, d.lock.Close())
	}
	if d.close != nil {
		errs = append(errs, d.close())
	}
	return errors.Join(errs...)
}
