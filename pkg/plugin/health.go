package plugin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/tierra-gpu/tierra/pkg/health"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
)

// healthProbeInterval is how often the GPUs with faults are asked whether
// they answer NVML, and their quiet periods checked: the most a clear is
// late by.
const healthProbeInterval = 250 * time.Millisecond

// healthResend is how often WatchHealthStatus re-sends an unchanged report:
// within the kubelet's 30 s before it calls the health Unknown.
const healthResend = 10 * time.Second

// healthCheckTimeout is what each report tells the kubelet to wait for the
// next one.
const healthCheckTimeout = 30 * time.Second

// healthMonitor feeds the GPUs' events into a health.Tracker, republishes
// when a device's taints change, and tells WatchHealthStatus streams. Its
// zero value serves streams (every prepared device Unknown) until run.
type healthMonitor struct {
	mu      sync.Mutex
	tracker *health.Tracker
	clock   clock.Clock
	// changed is closed and replaced whenever health may have changed.
	changed chan struct{}
	// statusDir gets the tracker's health.Status (health.StatusFile) on
	// every event and every change of taints, for tierra inspect and the
	// next start (restoreHealth), under bootID.
	statusDir, bootID string
}

// state returns the tracker (nil before run) and the channel closed at the
// next change.
func (m *healthMonitor) state() (*health.Tracker, clock.Clock, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.changed == nil {
		m.changed = make(chan struct{})
	}
	return m.tracker, m.clock, m.changed
}

func (m *healthMonitor) notify() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.changed != nil {
		close(m.changed)
	}
	m.changed = make(chan struct{})
}

// ReasonHealthRecordQuarantined is the reason of the Node event that says
// the health record (health.StatusFile) could not be restored from and was
// moved aside at start.
const ReasonHealthRecordQuarantined = "HealthRecordQuarantined"

// restoreHealth makes the tracker the publisher taints by, before the first
// publish, with what the previous plugin recorded in stateDir restored into
// it: a restart (or crash) keeps every GPU's taints, quiet period and clear
// time. A record of another boot restores no fault (a reboot resets the
// GPUs); a record without a boot id (or a boot id not known) is taken as
// this boot's, since keeping a taint a quiet period too long costs less
// than placing pods on a GPU that just faulted. A record that cannot be
// used is moved aside, with a log line and a Node event; health starts
// empty then.
func (d *Driver) restoreHealth(ctx context.Context, stateDir string, client kubernetes.Interface, node *corev1.Node, machine inventory.Machine) {
	logger := klog.FromContext(ctx)
	clk := clock.RealClock{}
	d.pub.mu.Lock()
	tracker := health.NewTracker(clk, d.pub.policy.Spec.Health)
	d.pub.health = tracker
	d.pub.mu.Unlock()
	bootID := ""
	if d.store != nil {
		bootID = d.store.BootID()
	}
	d.health.mu.Lock()
	d.health.clock, d.health.statusDir, d.health.bootID = clk, stateDir, bootID
	d.health.mu.Unlock()
	if stateDir == "" {
		return
	}
	rec, quarantined, err := health.LoadStatus(stateDir, clk.Now())
	switch {
	case quarantined != "":
		logger.Error(err, "Moved aside a GPU health record that cannot be restored; GPU health starts empty", "quarantinedAs", quarantined)
		nodeEvent(ctx, client, node, corev1.EventTypeWarning, ReasonHealthRecordQuarantined,
			fmt.Sprintf("Moved aside a GPU health record that cannot be restored as %s (%v); taints recorded before the restart are lost", quarantined, err))
		return
	case errors.Is(err, health.ErrNoStatus):
		return
	case err != nil:
		logger.Error(err, "Not restoring GPU health; it starts empty")
		return
	}
	present := make([]string, 0, len(machine.GPUs))
	for _, g := range machine.GPUs {
		present = append(present, g.UUID)
	}
	rebooted := rec.BootID != "" && bootID != "" && rec.BootID != bootID
	restored := tracker.Restore(rec, health.RestoreOptions{Present: present, Rebooted: rebooted})
	expired := tracker.Expire()
	logger.Info("Restored GPU health recorded before the restart", "recordedAt", rec.Time, "rebooted", rebooted,
		"tainted", restored.Tainted, "lost", restored.Lost, "resetByReboot", restored.Reset, "clearedSince", expired)
}

// startHealth runs the loop over events until they close (nil: there is no
// event watch, only the restored taints to clear); the loop records the
// health in the state directory. Only with events do the kubelet's health
// streams see the tracker. The tracker's clock is not Deps.Clock: that one
// is the claim pass's alone (its tests wait for its only timer).
func (d *Driver) startHealth(ctx context.Context, events <-chan nvgpu.Event) {
	d.pub.mu.Lock()
	tracker := d.pub.health
	d.pub.mu.Unlock()
	if events == nil && len(tracker.Faulty()) == 0 {
		return
	}
	d.health.mu.Lock()
	clk := d.health.clock
	if events != nil {
		d.health.tracker = tracker
	}
	d.health.mu.Unlock()
	d.health.notify()
	d.recordHealth(ctx, tracker)
	prober, _ := d.pub.gpus.(nvgpu.Prober)
	d.wg.Go(func() { d.healthLoop(ctx, tracker, clk, prober, events) })
}

// healthLoop observes each event and, every healthProbeInterval, probes the
// faulty GPUs and clears the quiet ones.
func (d *Driver) healthLoop(ctx context.Context, tracker *health.Tracker, clk clock.Clock, prober nvgpu.Prober, events <-chan nvgpu.Event) {
	logger := klog.FromContext(ctx)
	probe := clk.NewTimer(healthProbeInterval)
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, open := <-events:
			if !open {
				return
			}
			d.observe(ctx, tracker, ev)
		case <-probe.C():
			probe.Reset(healthProbeInterval)
			for _, uuid := range tracker.Faulty() {
				if prober != nil && tracker.SetAnswering(uuid, prober.Answers(ctx, uuid) == nil) {
					// Back on the bus: published again, still tainted.
					logger.Info("GPU answers NVML again; tainted until the quiet period passes", "gpu", uuid)
					d.pub.hardwareChanged(ctx, metrics.CauseHardware, fmt.Sprintf("GPU %s answers again", uuid))
					d.health.notify()
					d.recordHealth(ctx, tracker)
				}
			}
			var keys map[string][]string
			if d.metrics != nil {
				keys = taintKeys(tracker, tracker.Faulty())
			}
			if cleared := tracker.Expire(); len(cleared) > 0 {
				logger.Info("GPU health restored: taints cleared after the quiet period", "gpus", cleared)
				for _, uuid := range cleared {
					for _, key := range keys[uuid] {
						d.metrics.TaintCleared(key)
					}
				}
				d.pub.hardwareChanged(ctx, metrics.CauseHealth, fmt.Sprintf("GPUs %v healthy again", cleared))
				d.health.notify()
				d.recordHealth(ctx, tracker)
			}
		}
	}
}

// observe classifies one event and republishes when taints changed. A lost
// or unavailable GPU always republishes: discovery leaves it out.
func (d *Driver) observe(ctx context.Context, tracker *health.Tracker, ev nvgpu.Event) {
	hev := health.Event{GPU: ev.GPUUUID, XID: ev.XID}
	switch ev.Type {
	case nvgpu.EventXID:
		hev.Kind = health.KindXID
	case nvgpu.EventDoubleBitECC:
		hev.Kind = health.KindDoubleBitECC
	default:
		hev.Kind = health.KindGPULost
	}
	if ev.GPUInstanceID >= 0 {
		hev.Placement = d.instancePlacement(ctx, ev.GPUUUID, ev.GPUInstanceID)
	}
	action, changed := tracker.Observe(hev)
	if ev.Type == nvgpu.EventXID {
		d.metrics.XID(ev.GPUUUID, ev.XID, string(action))
	}
	if changed {
		d.metrics.TaintApplied(healthTaintKey(hev.Kind))
	}
	klog.FromContext(ctx).Info("GPU health event", "gpu", ev.GPUUUID, "index", ev.GPUIndex, "type", ev.Type,
		"xid", ev.XID, "gpuInstance", ev.GPUInstanceID, "computeInstance", ev.ComputeInstanceID, "action", action)
	if changed || hev.Kind == health.KindGPULost {
		cause := metrics.CauseHealth
		if hev.Kind == health.KindGPULost {
			cause = metrics.CauseHardware
		}
		d.pub.hardwareChanged(ctx, cause, fmt.Sprintf("GPU %s: %s (%s)", ev.GPUUUID, ev.Type, action))
	}
	d.health.notify()
	d.recordHealth(ctx, tracker)
}

// recordHealth writes the tracker's status to the state directory, where
// tierra inspect and the next start read it; a failure is logged, health
// goes on.
func (d *Driver) recordHealth(ctx context.Context, tracker *health.Tracker) {
	if d.health.statusDir == "" {
		return
	}
	s := tracker.Status()
	s.BootID = d.health.bootID
	if err := health.WriteStatus(d.health.statusDir, s); err != nil {
		klog.FromContext(ctx).Error(err, "Recording GPU health for tierra inspect", "dir", d.health.statusDir)
	}
}

// instancePlacement is the placement of a live MIG GPU instance; nil (the
// whole GPU) when discovery does not know it.
func (d *Driver) instancePlacement(ctx context.Context, uuid string, gi int) *inventory.MIGPlacement {
	m, err := d.pub.gpus.Machine(ctx)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Scoping a MIG event to its instance; treating it as the whole GPU's", "gpu", uuid)
		return nil
	}
	for _, g := range m.GPUs {
		if g.UUID != uuid || g.MIG == nil {
			continue
		}
		for _, in := range g.MIG.Instances {
			if in.GPUInstanceID == gi {
				return &in.Placement
			}
		}
	}
	return nil
}

// healthDevice is what the tracker needs of a published device.
func healthDevice(d resourceapi.Device) health.Device {
	hd := health.Device{GPU: tslices.DeviceGPU(d)}
	if pl, ok := tslices.DevicePlacement(d); ok {
		hd.Placement = &pl
	}
	return hd
}

// healthTaints puts the tracker's taints on the published devices; the
// caller holds p.mu.
func (p *publisher) healthTaints(resources resourceslice.DriverResources) resourceslice.DriverResources {
	if p.health == nil {
		return resources
	}
	return tslices.TaintDevices(resources, func(d resourceapi.Device) []resourceapi.DeviceTaint {
		return p.health.Taints(healthDevice(d))
	})
}

// preparedHealth is the health of every device prepared on the node: held
// devices found in the published shape by name (a MIG placement by its
// memory slices), others as their whole GPU.
func (d *Driver) preparedHealth(tracker *health.Tracker, now time.Time) kubeletplugin.DeviceHealthReport {
	d.pub.mu.Lock()
	built := d.pub.built
	d.pub.mu.Unlock()
	published := map[[2]string]resourceapi.Device{}
	for pool, p := range built.Pools {
		for _, s := range p.Slices {
			for _, dev := range s.Devices {
				published[[2]string{pool, dev.Name}] = dev
			}
		}
	}
	var report kubeletplugin.DeviceHealthReport
	for uuid, held := range d.prep.HeldDevices() {
		for _, h := range held {
			dh := kubeletplugin.DeviceHealth{PoolName: h.Pool, DeviceName: h.Device, Health: kubeletplugin.HealthStatusUnknown,
				LastUpdated: now, HealthCheckTimeout: healthCheckTimeout}
			if tracker != nil {
				hd := health.Device{GPU: uuid}
				if dev, ok := published[[2]string{h.Pool, h.Device}]; ok {
					hd = healthDevice(dev)
				}
				healthy, reason := tracker.Health(hd)
				dh.Health, dh.Message = kubeletplugin.HealthStatusHealthy, reason
				if !healthy {
					dh.Health = kubeletplugin.HealthStatusUnhealthy
				}
			}
			report.Devices = append(report.Devices, dh)
		}
	}
	slices.SortFunc(report.Devices, func(a, b kubeletplugin.DeviceHealth) int {
		return strings.Compare(a.PoolName+"/"+a.DeviceName, b.PoolName+"/"+b.DeviceName)
	})
	return report
}

// watchHealth streams preparedHealth: at once, on every change, and every
// healthResend, until ctx ends.
func (d *Driver) watchHealth(ctx context.Context, reports chan<- kubeletplugin.DeviceHealthReport) error {
	for {
		tracker, clk, changed := d.health.state()
		if clk == nil {
			clk = clock.RealClock{}
		}
		report := d.preparedHealth(tracker, clk.Now())
		select {
		case <-ctx.Done():
			return nil
		case reports <- report:
		}
		resend := clk.NewTimer(healthResend)
		select {
		case <-ctx.Done():
			resend.Stop()
			return nil
		case <-changed:
		case <-resend.C():
		}
		resend.Stop()
	}
}
