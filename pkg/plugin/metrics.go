package plugin

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/cost"
	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/sharing"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
)

// mpsCountTimeout bounds counting the MPS daemons at a scrape (with daemon
// pods it lists them from the API).
const mpsCountTimeout = 5 * time.Second

// startMetrics creates the plugin's collectors when the plugin has a
// registry (Deps.Metrics) or a metrics address, registers them and the
// extra collectors, and serves the registry on Config.MetricsAddress. A
// plugin without either gets a nil *metrics.Plugin: every count is a no-op.
// A metrics address that cannot be bound is logged, not fatal: the node's
// claims matter more than its metrics. It returns the registry (nil
// without metrics), for the collectors of per-pod use.
func (d *Driver) startMetrics(ctx context.Context, cfg Config, deps Deps) (*prometheus.Registry, error) {
	reg := deps.Metrics
	if reg == nil && cfg.MetricsAddress == "" {
		return nil, nil
	}
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	p := metrics.NewPlugin(nil)
	if err := reg.Register(p); err != nil {
		return nil, fmt.Errorf("register the plugin's metrics: %w", err)
	}
	for _, c := range deps.Collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register a metrics collector: %w", err)
		}
	}
	d.metrics = p
	addr, err := metrics.Serve(ctx, cfg.MetricsAddress, reg)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Not serving metrics")
		return reg, nil
	}
	d.metricsAddr = addr
	return reg, nil
}

// MetricsAddress is the address the metrics are served on ("" when not
// served); with port 0 in Config.MetricsAddress, the port bound.
func (d *Driver) MetricsAddress() string { return d.metricsAddr }

// metricsState is what the scrape-time collector reads: the checkpoint's
// prepared claims, the health tracker and the MPS daemons.
func (d *Driver) metricsState(node string, sharer *sharing.Manager) metrics.State {
	return metrics.State{
		ClaimDevices: func() []metrics.ClaimDevice { return d.claimDevices(node) },
		GPUHealth:    d.gpuHealth,
		MPSDaemons: func() (int, error) {
			ctx, cancel := context.WithTimeout(context.Background(), mpsCountTimeout)
			defer cancel()
			gpus, err := sharer.MPSDaemons(ctx)
			return len(gpus), err
		},
	}
}

// claimDevices lists the devices of the prepared claims from their
// checkpoint records; admin-access devices (monitoring) are left out: they
// use no GPU.
func (d *Driver) claimDevices(node string) []metrics.ClaimDevice {
	published := d.pub.devices()
	var out []metrics.ClaimDevice
	for _, rec := range d.prep.Records() {
		if rec.Phase != checkpoint.PhasePrepared {
			continue
		}
		pods := make([]string, 0, len(rec.Pods))
		for _, p := range rec.Pods {
			pods = append(pods, p.Name)
		}
		for _, dev := range rec.Devices {
			if dev.AdminAccess {
				continue
			}
			cd := metrics.ClaimDevice{Namespace: rec.Namespace, Claim: rec.Name, Pods: pods, Tenant: rec.Tenant,
				Tier: published[[2]string{dev.Pool, dev.Device}].tier, Node: node, Device: dev.Device,
				GPUUUID: dev.GPUUUID, Sharing: dev.Sharing, Mode: deviceMode(dev)}
			if dev.MIG != nil {
				cd.MIGGI, cd.MIGCI = strconv.Itoa(dev.MIG.GPUInstanceID), strconv.Itoa(dev.MIG.ComputeInstanceID)
			}
			out = append(out, cd)
		}
	}
	return out
}

// gpuHealth is the health of the published GPUs and of those the tracker
// knows faulty (a lost GPU is no longer published): unknown before the GPU
// events are watched, unhealthy while a fault concerns the GPU or it does
// not answer.
func (d *Driver) gpuHealth() []metrics.GPUHealth {
	tracker, _, _ := d.health.state()
	uuids := d.pub.publishedGPUs()
	if tracker != nil {
		uuids = append(uuids, tracker.Faulty()...)
	}
	out := make([]metrics.GPUHealth, 0, len(uuids))
	for _, uuid := range uuids {
		state := metrics.HealthUnknown
		if tracker != nil {
			state = metrics.HealthHealthy
			if healthy, _ := tracker.Health(health.Device{GPU: uuid}); !healthy {
				state = metrics.HealthUnhealthy
			}
		}
		out = append(out, metrics.GPUHealth{UUID: uuid, State: state})
	}
	return out
}

// claimMode is the mode label of a claim's prepare: from its record once
// prepared, else from the published devices it was allocated.
func (d *Driver) claimMode(claim *resourceapi.ResourceClaim, prepared bool) string {
	if prepared && d.store != nil {
		if rec, ok := d.store.Get(string(claim.UID)); ok {
			return recordMode(rec)
		}
	}
	if claim.Status.Allocation == nil {
		return metrics.ModeUnknown
	}
	published := d.pub.devices()
	for _, r := range claim.Status.Allocation.Devices.Results {
		if dev, ok := published[[2]string{r.Pool, r.Device}]; ok && r.Driver == v1alpha1.DriverName {
			return dev.mode
		}
	}
	return metrics.ModeUnknown
}

// recordMode is the mode of a claim's first device that uses a GPU.
func recordMode(rec checkpoint.Claim) string {
	for _, dev := range rec.Devices {
		if !dev.AdminAccess {
			return deviceMode(dev)
		}
	}
	if len(rec.Devices) > 0 {
		return deviceMode(rec.Devices[0])
	}
	return metrics.ModeUnknown
}

func deviceMode(dev checkpoint.Device) string {
	switch {
	case dev.MIG != nil || dev.PlannedMIG != nil:
		return metrics.ModeMIG
	case dev.Sharing == string(v1alpha1.SharingMPS):
		return metrics.ModeMPS
	case dev.Sharing == string(v1alpha1.SharingTimeSlicing):
		return metrics.ModeTimeSlicing
	}
	return metrics.ModeExclusive
}

// publishedDevice is what the metrics and the per-claim usage need of a
// published device: its mode, tier, GPU and the price it was published with.
type publishedDevice struct {
	mode, tier, gpu string
	price           cost.Price
}

// indexDevices maps each published device, by pool and name, to its mode,
// tier, GPU and price.
func indexDevices(resources resourceslice.DriverResources) map[[2]string]publishedDevice {
	out := map[[2]string]publishedDevice{}
	for pool, p := range resources.Pools {
		for _, s := range p.Slices {
			for _, dev := range s.Devices {
				out[[2]string{pool, dev.Name}] = publishedDevice{mode: publishedMode(dev),
					tier: tslices.StringAttribute(dev, tslices.AttrTier), gpu: tslices.DeviceGPU(dev),
					price: tslices.DevicePrice(dev)}
			}
		}
	}
	return out
}

func publishedMode(dev resourceapi.Device) string {
	switch {
	case tslices.StringAttribute(dev, tslices.AttrMIGProfile) != "":
		return metrics.ModeMIG
	case tslices.StringAttribute(dev, tslices.AttrSharing) == string(v1alpha1.SharingMPS):
		return metrics.ModeMPS
	case tslices.StringAttribute(dev, tslices.AttrSharing) == string(v1alpha1.SharingTimeSlicing):
		return metrics.ModeTimeSlicing
	}
	return metrics.ModeExclusive
}

// healthTaintKey is the taint key a health event's fault puts on devices.
func healthTaintKey(kind health.Kind) string {
	switch kind {
	case health.KindXID:
		return health.XIDTaintKey
	case health.KindDoubleBitECC:
		return health.ECCTaintKey
	}
	return health.LostTaintKey
}

// taintKeys are the health taint keys on each of the GPUs (whole-GPU
// scope: every fault of the GPU).
func taintKeys(tracker *health.Tracker, uuids []string) map[string][]string {
	out := map[string][]string{}
	for _, uuid := range uuids {
		for _, t := range tracker.Taints(health.Device{GPU: uuid}) {
			out[uuid] = append(out[uuid], t.Key)
		}
	}
	return out
}

var _ prometheus.Collector = (*metrics.Plugin)(nil)
