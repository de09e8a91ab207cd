package prepare

import (
	"encoding/json"
	"errors"
	"fmt"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/dynamic-resource-allocation/resourceslice"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
)

// Sentinel errors for claims that cannot be prepared; test with errors.Is.
var (
	// ErrNotAllocated: the claim has no allocation.
	ErrNotAllocated = errors.New("claim is not allocated")
	// ErrUnknownDevice: the allocation names a device this node does not publish.
	ErrUnknownDevice = errors.New("unknown device")
	// ErrForeignDevice: the allocation has no device of this driver on this node.
	ErrForeignDevice = errors.New("device of another driver or node")
	// ErrInvalidConfig: the opaque config cannot be applied to the device.
	ErrInvalidConfig = errors.New("invalid config")
	// ErrTierNotAllowed: the device is of a tier the claim's tenant may not claim.
	ErrTierNotAllowed = errors.New("tier not allowed for the tenant")
)

// NodePool is the node's pool as published, indexed for planning: the
// devices of its pool by name and the GPUs behind them.
type NodePool struct {
	driver, pool string
	devices      map[string]resourceapi.Device
	gpus         map[string]inventory.GPU
}

// NewNodePool indexes the pool of the node's published resources.
func NewNodePool(driver, pool string, resources resourceslice.DriverResources, machine inventory.Machine) (*NodePool, error) {
	p, ok := resources.Pools[pool]
	if !ok {
		return nil, fmt.Errorf("published resources have no pool %q", pool)
	}
	inv := &NodePool{driver: driver, pool: pool, devices: map[string]resourceapi.Device{}, gpus: map[string]inventory.GPU{}}
	for _, s := range p.Slices {
		for _, d := range s.Devices {
			inv.devices[d.Name] = d
		}
	}
	for _, g := range machine.GPUs {
		inv.gpus[g.UUID] = g
	}
	return inv, nil
}

// GPUs returns the GPUs of the machine by UUID.
func (inv *NodePool) GPU(uuid string) (inventory.GPU, bool) {
	g, ok := inv.gpus[uuid]
	return g, ok
}

// ClaimPlan is what preparing one claim does, device by device.
type ClaimPlan struct {
	Devices []DevicePlan
}

// DevicePlan is one allocated device: the GPU behind it, the sharing it
// gets and, for a MIG device, the instance to create.
type DevicePlan struct {
	Request, Pool, Device string
	ShareID               *types.UID
	GPU                   inventory.GPU
	Config                *v1alpha1.GpuConfig
	RawConfig             json.RawMessage
	// Shared is true for a device many claims allocate from.
	Shared bool
	// AdminAccess is a monitoring allocation: the device's nodes only, no
	// change to the GPU, and no hold on it against other claims.
	AdminAccess bool
	// Tier is the tier the device is published in.
	Tier string
	// MIG is the instance to create; nil for a whole GPU.
	MIG *MIGPlan
}

// MIGPlan is a MIG instance to create.
type MIGPlan struct {
	Profile   string
	Placement inventory.MIGPlacement
}

// Sharing is the device's resolved sharing strategy.
func (d DevicePlan) Sharing() v1alpha1.SharingStrategy { return d.Config.Sharing.Strategy }

// SoftShared reports whether the device is time-sliced or under MPS.
func (d DevicePlan) SoftShared() bool { return d.Sharing() != v1alpha1.SharingExclusive }

// Mode is how the device holds its GPU: a MIG instance, a share of a
// shared device, else the whole GPU (even with a soft-sharing config: then
// the claim's own containers share it).
func (d DevicePlan) Mode() tenancy.Mode {
	switch {
	case d.MIG != nil:
		return tenancy.ModeMIG
	case d.Shared:
		return tenancy.ModeShared
	}
	return tenancy.ModeWhole
}

// ExclusiveProcess reports whether prepare sets the GPU's compute mode to
// ExclusiveProcess: a whole GPU that the claim does not share.
func (d DevicePlan) ExclusiveProcess() bool { return !d.AdminAccess && d.MIG == nil && !d.SoftShared() }

// ClaimPlan maps the claim's allocation results of this driver to devices of
// this node and resolves their config. It is pure: nothing is changed.
func (inv *NodePool) ClaimPlan(claim *resourceapi.ResourceClaim) (ClaimPlan, error) {
	alloc := claim.Status.Allocation
	if alloc == nil {
		return ClaimPlan{}, ErrNotAllocated
	}
	configs, err := decodeConfigs(inv.driver, alloc.Devices.Config)
	if err != nil {
		return ClaimPlan{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var plan ClaimPlan
	var foreign []string
	for _, r := range alloc.Devices.Results {
		if r.Driver != inv.driver || r.Pool != inv.pool {
			foreign = append(foreign, fmt.Sprintf("%s/%s/%s", r.Driver, r.Pool, r.Device))
			continue
		}
		d, err := inv.planDevice(r, configs)
		if err != nil {
			return ClaimPlan{}, err
		}
		plan.Devices = append(plan.Devices, d)
	}
	if len(plan.Devices) == 0 {
		return ClaimPlan{}, fmt.Errorf("no device of driver %s in pool %s among %v: %w", inv.driver, inv.pool, foreign, ErrForeignDevice)
	}
	return plan, nil
}

func (inv *NodePool) planDevice(r resourceapi.DeviceRequestAllocationResult, configs []decodedConfig) (DevicePlan, error) {
	dev, ok := inv.devices[r.Device]
	if !ok {
		return DevicePlan{}, fmt.Errorf("request %q: device %q is not published in pool %s: %w", r.Request, r.Device, inv.pool, ErrUnknownDevice)
	}
	cfg, raw, err := resolveFor(r.Request, configs)
	if err != nil {
		return DevicePlan{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	d := DevicePlan{Request: r.Request, Pool: r.Pool, Device: r.Device, ShareID: r.ShareID, Config: cfg, RawConfig: raw,
		Shared:      dev.AllowMultipleAllocations != nil && *dev.AllowMultipleAllocations,
		AdminAccess: r.AdminAccess != nil && *r.AdminAccess,
		Tier:        slices.StringAttribute(dev, slices.AttrTier)}
	uuid := slices.StringAttribute(dev, slices.AttrUUID)
	if profile := slices.StringAttribute(dev, slices.AttrMIGProfile); profile != "" {
		uuid = slices.StringAttribute(dev, slices.AttrParentUUID)
		if d.MIG, err = inv.migPlan(dev, uuid, profile); err != nil {
			return DevicePlan{}, err
		}
	}
	if d.GPU, ok = inv.gpus[uuid]; !ok {
		return DevicePlan{}, fmt.Errorf("device %q: GPU %q is not on this node: %w", r.Device, uuid, ErrUnknownDevice)
	}
	if err := checkStrategy(d, slices.StringAttribute(dev, slices.AttrSharing)); err != nil {
		return DevicePlan{}, fmt.Errorf("request %q: device %q: %w: %w", r.Request, r.Device, err, ErrInvalidConfig)
	}
	return d, nil
}

// checkStrategy refuses a sharing strategy the device cannot have. A shared
// GPU's strategy is its tier's (published as the sharing attribute): a
// claim cannot switch it, nor take it exclusively. A MIG instance is
// isolated in hardware: soft sharing on it would start MPS or set a
// time-slice on the parent GPU, under every other instance.
func checkStrategy(d DevicePlan, published string) error {
	strategy := d.Sharing()
	switch {
	case d.MIG != nil && d.SoftShared():
		return fmt.Errorf("sharing.strategy %s is not allowed on a MIG device (MIG is isolated in hardware); use %s",
			strategy, v1alpha1.SharingExclusive)
	case d.Shared && published != "" && string(strategy) != published:
		return fmt.Errorf("sharing.strategy %s conflicts with the GPU's, %s (the tier's); omit it or set %s",
			strategy, published, published)
	case d.Shared && !d.SoftShared():
		return fmt.Errorf("the device is shared, sharing.strategy %s needs %s or %s",
			v1alpha1.SharingExclusive, v1alpha1.SharingTimeSlicing, v1alpha1.SharingMPS)
	}
	return nil
}

func (inv *NodePool) migPlan(dev resourceapi.Device, uuid, profile string) (*MIGPlan, error) {
	start64, ok := slices.IntAttribute(dev, slices.AttrMIGPlacement)
	if !ok {
		return nil, fmt.Errorf("MIG device %q has no %s: %w", dev.Name, slices.AttrMIGPlacement, ErrUnknownDevice)
	}
	g, ok := inv.gpus[uuid]
	if !ok {
		return nil, fmt.Errorf("MIG device %q: GPU %q is not on this node: %w", dev.Name, uuid, ErrUnknownDevice)
	}
	p, ok := g.MIG.Profile(profile)
	if !ok {
		return nil, fmt.Errorf("MIG device %q: GPU %s has no profile %q: %w", dev.Name, uuid, profile, ErrUnknownDevice)
	}
	start := int(start64)
	for _, pl := range p.Placements {
		if pl.Start == start {
			return &MIGPlan{Profile: profile, Placement: pl}, nil
		}
	}
	return nil, fmt.Errorf("MIG device %q: profile %s has no placement at %d: %w", dev.Name, profile, start, ErrUnknownDevice)
}
