package v1alpha1

// Default fills in each tier's sharing from its partitioning (see
// Tier.Default). It never overrides a value that is set, and is idempotent.
func (p *TierPolicy) Default() {
	for i := range p.Spec.Tiers {
		p.Spec.Tiers[i].Default()
	}
}

// Default sets the tier's sharing when it is unset or has no strategy:
// Shared tiers time-slice with the Default interval, Whole and MIG tiers are
// Exclusive. A tier with an unknown partitioning is left for Validate.
func (t *Tier) Default() {
	var strategy SharingStrategy
	switch t.Partitioning {
	case PartitioningShared:
		strategy = SharingTimeSlicing
	case PartitioningWhole, PartitioningMIG:
		strategy = SharingExclusive
	default:
		return
	}
	if t.Sharing == nil {
		t.Sharing = &GpuSharing{}
	}
	if t.Sharing.Strategy == "" {
		t.Sharing.Strategy = strategy
	}
	t.Sharing.Default()
}

// DeviceClassName is the name of the DeviceClass rendered for the tier:
// <name>.gpu.tierra.dev.
func (t *Tier) DeviceClassName() string {
	return t.Name + "." + DriverName
}

// Tier returns the tier with the given name, or nil.
func (p *TierPolicy) Tier(name string) *Tier {
	for i := range p.Spec.Tiers {
		if p.Spec.Tiers[i].Name == name {
			return &p.Spec.Tiers[i]
		}
	}
	return nil
}

// TierNames returns the tier names in policy order.
func (p *TierPolicy) TierNames() []string {
	names := make([]string, 0, len(p.Spec.Tiers))
	for _, t := range p.Spec.Tiers {
		names = append(names, t.Name)
	}
	return names
}
