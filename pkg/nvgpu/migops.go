//go:build cgo

package nvgpu

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

func (g *nvmlMachine) MIGMode(_ context.Context, uuid string) (MIGMode, error) {
	d, err := g.device(uuid)
	if err != nil {
		return MIGMode{}, fmt.Errorf("get MIG mode: %w", err)
	}
	return migMode(d)
}

func migMode(d device) (MIGMode, error) {
	current, pending, ret := d.GetMigMode()
	if ret != nvml.SUCCESS {
		return MIGMode{}, nvmlError("get MIG mode of "+d.String(), ret)
	}
	return MIGMode{Enabled: current == nvml.DEVICE_MIG_ENABLE, PendingEnabled: pending == nvml.DEVICE_MIG_ENABLE}, nil
}

func (g *nvmlMachine) SetMIGMode(ctx context.Context, uuid string, enabled bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	d, err := g.device(uuid)
	if err != nil {
		return fmt.Errorf("set MIG mode: %w", err)
	}
	mode, err := migMode(d)
	if err != nil {
		return err
	}
	if mode.Enabled && !enabled {
		live, err := g.liveInstances(d)
		if err != nil {
			return err
		}
		if len(live) > 0 {
			return fmt.Errorf("disable MIG on %s: %d GPU instances still exist (%s): %w",
				d, len(live), describeInstances(live), ErrInstanceBusy)
		}
	}
	want := nvml.DEVICE_MIG_DISABLE
	if enabled {
		want = nvml.DEVICE_MIG_ENABLE
	}
	activation, ret := d.SetMigMode(want)
	if ret != nvml.SUCCESS {
		return nvmlError(fmt.Sprintf("set MIG mode %t on %s", enabled, d), ret)
	}
	if activation != nvml.SUCCESS {
		return fmt.Errorf("set MIG mode %t on %s: pending until the GPU is reset (%s): %w",
			enabled, d, activation.Error(), ErrResetRequired)
	}
	klog.FromContext(ctx).V(2).Info("Set MIG mode", "gpu", d.uuid, "enabled", enabled)
	return nil
}

func (g *nvmlMachine) liveInstances(d device) ([]liveInstance, error) {
	mem, err := memoryTotal(d)
	if err != nil {
		return nil, err
	}
	profiles, err := readProfiles(d, mem)
	if err != nil {
		return nil, err
	}
	return listInstances(d, profiles)
}

func (g *nvmlMachine) CreateMIGInstance(ctx context.Context, opts CreateMIGOptions) (inventory.MIGInstance, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	d, p, err := g.checkCreate(opts)
	if err != nil {
		return inventory.MIGInstance{}, err
	}
	what := fmt.Sprintf("%s at %s on %s", p.inv.Name, opts.Placement, d)
	gi, ret := d.CreateGpuInstanceWithPlacement(&p.info,
		&nvml.GpuInstancePlacement{Start: uint32(opts.Placement.Start), Size: uint32(opts.Placement.Size)})
	if ret != nvml.SUCCESS {
		return inventory.MIGInstance{}, nvmlError("create GPU instance "+what, ret)
	}
	ciProfile, err := fullComputeProfile(gi, p)
	if err == nil {
		_, ret = gi.CreateComputeInstance(&ciProfile)
		if ret != nvml.SUCCESS {
			err = nvmlError("create compute instance in "+what, ret)
		}
	}
	if err != nil {
		if ret := gi.Destroy(); ret != nvml.SUCCESS {
			return inventory.MIGInstance{}, fmt.Errorf("%w (and rolling back the GPU instance: %w)", err,
				nvmlError("destroy GPU instance "+what, ret))
		}
		return inventory.MIGInstance{}, err
	}
	info, ret := gi.GetInfo()
	if ret != nvml.SUCCESS {
		return inventory.MIGInstance{}, nvmlError("read GPU instance "+what, ret)
	}
	uuids, err := migDeviceUUIDs(d)
	if err != nil {
		return inventory.MIGInstance{}, err
	}
	l, err := readInstance(d, gi, p, uuids)
	if err != nil {
		return inventory.MIGInstance{}, err
	}
	klog.FromContext(ctx).V(2).Info("Created MIG instance", "gpu", d.uuid, "profile", p.inv.Name,
		"placement", opts.Placement, "gpuInstance", info.Id, "uuid", l.inv.UUID)
	return l.inv, nil
}

// checkCreate does what NVML does not reliably do: it refuses a profile the
// GPU lacks, a placement the profile does not allow, and a placement that
// overlaps a live GPU instance.
func (g *nvmlMachine) checkCreate(opts CreateMIGOptions) (device, profile, error) {
	d, err := g.device(opts.GPUUUID)
	if err != nil {
		return device{}, profile{}, fmt.Errorf("create MIG instance %s: %w", opts.Profile, err)
	}
	mode, err := migMode(d)
	if err != nil {
		return d, profile{}, err
	}
	if !mode.Enabled {
		return d, profile{}, fmt.Errorf("create MIG instance %s on %s: %w", opts.Profile, d, ErrMIGDisabled)
	}
	mem, err := memoryTotal(d)
	if err != nil {
		return d, profile{}, err
	}
	profiles, err := readProfiles(d, mem)
	if err != nil {
		return d, profile{}, err
	}
	i := slices.IndexFunc(profiles, func(p profile) bool { return p.inv.Name == opts.Profile })
	if i < 0 {
		names := make([]string, 0, len(profiles))
		for _, p := range profiles {
			names = append(names, p.inv.Name)
		}
		return d, profile{}, fmt.Errorf("create MIG instance on %s: profile %q (have %s): %w",
			d, opts.Profile, strings.Join(names, ", "), ErrNotFound)
	}
	p := profiles[i]
	if !slices.Contains(p.inv.Placements, opts.Placement) {
		return d, p, fmt.Errorf("create MIG instance %s on %s: placement %s is not one of %s: %w",
			p.inv.Name, d, opts.Placement, inventory.FormatPlacements(p.inv.Placements), ErrInvalidPlacement)
	}
	live, err := listInstances(d, profiles)
	if err != nil {
		return d, p, err
	}
	for _, l := range live {
		if l.inv.Placement.Overlaps(opts.Placement) {
			return d, p, fmt.Errorf("create MIG instance %s at %s on %s: overlaps GPU instance %d (%s at %s): %w",
				p.inv.Name, opts.Placement, d, l.inv.GPUInstanceID, l.inv.ProfileName, l.inv.Placement,
				ErrPlacementOverlap)
		}
	}
	return d, p, nil
}

// fullComputeProfile is the compute instance profile that spans the whole
// GPU instance.
func fullComputeProfile(gi nvml.GpuInstance, p profile) (nvml.ComputeInstanceProfileInfo, error) {
	for ciIdx := range nvml.COMPUTE_INSTANCE_PROFILE_COUNT {
		info, ret := gi.GetComputeInstanceProfileInfo(ciIdx, nvml.COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
		if ret == nvml.SUCCESS && info.SliceCount == p.info.SliceCount {
			return info, nil
		}
	}
	return nvml.ComputeInstanceProfileInfo{}, fmt.Errorf("no compute instance profile spans %s: %w",
		p.inv.Name, ErrNotSupported)
}

// findInstance returns the live GPU instance with the given id.
func (g *nvmlMachine) findInstance(d device, id int) (liveInstance, error) {
	live, err := g.liveInstances(d)
	if err != nil {
		return liveInstance{}, err
	}
	i := slices.IndexFunc(live, func(l liveInstance) bool { return l.inv.GPUInstanceID == id })
	if i < 0 {
		return liveInstance{}, fmt.Errorf("GPU instance %d on %s: %w", id, d, ErrNotFound)
	}
	return live[i], nil
}

func (g *nvmlMachine) DestroyComputeInstance(ctx context.Context, ref ComputeInstanceRef) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	d, err := g.device(ref.GPUUUID)
	if err != nil {
		return fmt.Errorf("destroy compute instance: %w", err)
	}
	l, err := g.findInstance(d, ref.GPUInstanceID)
	if err != nil {
		return fmt.Errorf("destroy compute instance %d: %w", ref.ComputeInstanceID, err)
	}
	i := slices.IndexFunc(l.inv.ComputeInstances, func(c inventory.ComputeInstance) bool {
		return c.ID == ref.ComputeInstanceID
	})
	if i < 0 {
		return fmt.Errorf("destroy compute instance %d of GPU instance %d on %s: %w",
			ref.ComputeInstanceID, ref.GPUInstanceID, d, ErrNotFound)
	}
	if ret := l.cis[i].Destroy(); ret != nvml.SUCCESS {
		return nvmlError(fmt.Sprintf("destroy compute instance %d of GPU instance %d on %s",
			ref.ComputeInstanceID, ref.GPUInstanceID, d), ret)
	}
	klog.FromContext(ctx).V(2).Info("Destroyed compute instance", "gpu", d.uuid,
		"gpuInstance", ref.GPUInstanceID, "computeInstance", ref.ComputeInstanceID)
	return nil
}

func (g *nvmlMachine) DestroyGPUInstance(ctx context.Context, uuid string, id int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	d, err := g.device(uuid)
	if err != nil {
		return fmt.Errorf("destroy GPU instance %d: %w", id, err)
	}
	l, err := g.findInstance(d, id)
	if err != nil {
		return fmt.Errorf("destroy: %w", err)
	}
	if n := len(l.inv.ComputeInstances); n > 0 {
		ids := make([]string, n)
		for i, c := range l.inv.ComputeInstances {
			ids[i] = fmt.Sprint(c.ID)
		}
		return fmt.Errorf("destroy GPU instance %d (%s at %s) on %s: compute instances [%s] still exist: %w",
			id, l.inv.ProfileName, l.inv.Placement, d, strings.Join(ids, " "), ErrInstanceBusy)
	}
	if ret := l.gi.Destroy(); ret != nvml.SUCCESS {
		return nvmlError(fmt.Sprintf("destroy GPU instance %d (%s at %s) on %s",
			id, l.inv.ProfileName, l.inv.Placement, d), ret)
	}
	klog.FromContext(ctx).V(2).Info("Destroyed GPU instance", "gpu", d.uuid, "gpuInstance", id)
	return nil
}

func describeInstances(live []liveInstance) string {
	parts := make([]string, len(live))
	for i, l := range live {
		parts[i] = fmt.Sprintf("%d: %s at %s", l.inv.GPUInstanceID, l.inv.ProfileName, l.inv.Placement)
	}
	return strings.Join(parts, ", ")
}
