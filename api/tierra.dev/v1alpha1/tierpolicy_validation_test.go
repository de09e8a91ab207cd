package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDefaultTierPolicyValidates(t *testing.T) {
	p := DefaultTierPolicy()
	assert.Empty(t, errStrings(p.Validate()))
	assert.Equal(t, []string{TierTraining, TierInference, TierDev}, p.TierNames())
	assert.Equal(t, "inference.gpu.tierra.dev", p.Tier(TierInference).DeviceClassName())
	assert.Nil(t, p.Tier("missing"))
}

func TestTierPolicyValidate(t *testing.T) {
	tests := map[string]struct {
		mutate   func(p *TierPolicy)
		wantErrs []string
	}{
		"no tiers": {
			mutate:   func(p *TierPolicy) { p.Spec.Tiers = nil; p.Spec.Tenants = nil },
			wantErrs: []string{`spec.tiers: Required value: at least one tier is required`},
		},
		"tier name not a DNS label, and duplicated": {
			mutate: func(p *TierPolicy) { p.Spec.Tiers[0].Name = "Training"; p.Spec.Tiers[1].Name = TierDev },
			wantErrs: []string{
				`spec.tiers[0].name: Invalid value: "Training": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
				`spec.tiers[2].name: Duplicate value: "dev"`,
				`spec.tenants[0].allowedTiers[0]: Unsupported value: "training": supported values: "Training", "dev", "dev"`,
				`spec.tenants[0].allowedTiers[1]: Unsupported value: "inference": supported values: "Training", "dev", "dev"`,
				`spec.tenants[1].allowedTiers[0]: Unsupported value: "inference": supported values: "Training", "dev", "dev"`,
			},
		},
		"reserved tier name": {
			mutate:   func(p *TierPolicy) { p.Spec.Tiers[2].Name = "mig"; p.Spec.Tenants = nil },
			wantErrs: []string{`spec.tiers[2].name: Invalid value: "mig": tier name mig is reserved: mig.gpu.tierra.dev is a plain class of the driver`},
		},
		"empty tier name": {
			mutate:   func(p *TierPolicy) { p.Spec.Tiers[2].Name = ""; p.Spec.Tenants = nil },
			wantErrs: []string{`spec.tiers[2].name: Required value: a DNS label (lower case letters, digits and '-')`},
		},
		"unknown partitioning": {
			mutate:   func(p *TierPolicy) { p.Spec.Tiers[1].Partitioning = "Mig" },
			wantErrs: []string{`spec.tiers[1].partitioning: Unsupported value: "Mig": supported values: "Whole", "MIG", "Shared"`},
		},
		"missing partitioning": {
			mutate:   func(p *TierPolicy) { p.Spec.Tiers[1].Partitioning = ""; p.Spec.Tiers[1].Sharing = nil },
			wantErrs: []string{`spec.tiers[1].partitioning: Required value: one of "Whole", "MIG", "Shared"`},
		},
		"shared tier exclusive": {
			mutate:   func(p *TierPolicy) { p.Spec.Tiers[2].Sharing = &GpuSharing{Strategy: SharingExclusive} },
			wantErrs: []string{`spec.tiers[2].sharing.strategy: Invalid value: "Exclusive": Shared partitioning needs strategy "MPS" or "TimeSlicing"`},
		},
		"whole tier mps": {
			mutate:   func(p *TierPolicy) { p.Spec.Tiers[0].Sharing = &GpuSharing{Strategy: SharingMPS} },
			wantErrs: []string{`spec.tiers[0].sharing.strategy: Invalid value: "MPS": Whole partitioning needs strategy "Exclusive"`},
		},
		"mig tier time-slicing with bad interval": {
			mutate: func(p *TierPolicy) {
				p.Spec.Tiers[1].Sharing = &GpuSharing{Strategy: SharingTimeSlicing, TimeSlicing: &TimeSlicingConfig{Interval: "Forever"}}
			},
			wantErrs: []string{
				`spec.tiers[1].sharing.strategy: Invalid value: "TimeSlicing": MIG partitioning needs strategy "Exclusive"`,
				`spec.tiers[1].sharing.timeSlicing.interval: Unsupported value: "Forever": supported values: "Default", "Short", "Medium", "Long"`,
			},
		},
		"unset sharing and strategy are fine before defaulting": {
			mutate: func(p *TierPolicy) {
				p.Spec.Tiers[0].Sharing = nil
				p.Spec.Tiers[2].Sharing = &GpuSharing{}
			},
		},
		"mps parameters without a strategy on a whole tier": {
			mutate: func(p *TierPolicy) {
				p.Spec.Tiers[0].Sharing = &GpuSharing{MPS: &MPSConfig{DefaultActiveThreadPercentage: ptrTo[int32](0)}}
			},
			wantErrs: []string{
				`spec.tiers[0].sharing.mps: Forbidden: only allowed when strategy is "MPS"`,
				`spec.tiers[0].sharing.mps.defaultActiveThreadPercentage: Invalid value: 0: must be between 1 and 100`,
			},
		},
		"bad gpu selector": {
			mutate: func(p *TierPolicy) {
				g := &p.Spec.Tiers[0].GPUs
				g.MinMemory = "80 GiB"
				g.Products = []string{ProductH100SXM, "", ProductH100SXM}
				g.NodeSelector.MatchExpressions[0].Operator = "Within"
				p.Spec.Tiers[1].GPUs.MinMemory = "-1"
			},
			wantErrs: []string{
				`spec.tiers[0].gpus.nodeSelector.matchExpressions[0].operator: Invalid value: "Within": not a valid selector operator`,
				`spec.tiers[0].gpus.products[1]: Required value: must not be empty`,
				`spec.tiers[0].gpus.products[2]: Duplicate value: "NVIDIA H100 80GB HBM3"`,
				`spec.tiers[0].gpus.minMemory: Invalid value: "80 GiB": must be a quantity such as "80Gi"`,
				`spec.tiers[1].gpus.minMemory: Invalid value: "-1": must not be negative`,
			},
		},
		"bad prices": {
			mutate: func(p *TierPolicy) {
				b := &p.Spec.PriceBook
				b.Default = "cheap"
				b.Products[1].PerGPUHour = "$2.75"
				b.Products[2].PerGPUHour = ""
				b.Products[3].Product = ProductA100SXM80GB
			},
			wantErrs: []string{
				`spec.priceBook.default: Invalid value: "cheap": price "cheap": want a decimal dollar amount like "2.75" with at most 6 decimals`,
				`spec.priceBook.products[1].perGPUHour: Invalid value: "$2.75": price "$2.75": want a decimal dollar amount like "2.75" with at most 6 decimals`,
				`spec.priceBook.products[2].perGPUHour: Required value: a decimal dollar amount such as "2.75"`,
				`spec.priceBook.products[3].product: Duplicate value: "NVIDIA A100-SXM4-80GB"`,
			},
		},
		"bad overrides": {
			mutate: func(p *TierPolicy) {
				o := p.Spec.PriceBook.Overrides[0]
				o.Discount = 101
				o.Products = []ProductPrice{{Product: "", PerGPUHour: "1.0000001"}}
				bad := PriceOverride{Name: o.Name, Discount: -1,
					NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"bad key!": "x"}}}
				p.Spec.PriceBook.Overrides = []PriceOverride{o, bad}
			},
			wantErrs: []string{
				`spec.priceBook.overrides[0].discount: Invalid value: 101: must be between 0 and 100`,
				`spec.priceBook.overrides[0].products[0].product: Required value: product name as NVML reports it`,
				`spec.priceBook.overrides[0].products[0].perGPUHour: Invalid value: "1.0000001": price "1.0000001": want a decimal dollar amount like "2.75" with at most 6 decimals`,
				`spec.priceBook.overrides[1].name: Duplicate value: "spot"`,
				`spec.priceBook.overrides[1].nodeSelector.matchLabels: Invalid value: "bad key!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
				`spec.priceBook.overrides[1].discount: Invalid value: -1: must be between 0 and 100`,
			},
		},
		"bad tenants": {
			mutate: func(p *TierPolicy) {
				p.Spec.Tenants[1].Name = "research"
				p.Spec.Tenants[1].AllowedTiers = []string{"batch", TierDev, TierDev}
			},
			wantErrs: []string{
				`spec.tenants[1].name: Duplicate value: "research"`,
				`spec.tenants[1].allowedTiers[2]: Duplicate value: "dev"`,
				`spec.tenants[1].allowedTiers[0]: Unsupported value: "batch": supported values: "training", "inference", "dev"`,
			},
		},
		"open tenant of defined tiers": {
			mutate: func(p *TierPolicy) { p.Spec.OpenTenant = &OpenTenant{AllowedTiers: []string{TierDev}} },
		},
		"open tenant allowed nothing": {
			mutate: func(p *TierPolicy) { p.Spec.OpenTenant = &OpenTenant{} },
		},
		"bad open tenant": {
			mutate: func(p *TierPolicy) {
				p.Spec.OpenTenant = &OpenTenant{AllowedTiers: []string{"batch", TierDev, "", TierDev}}
			},
			wantErrs: []string{
				`spec.openTenant.allowedTiers[2]: Required value: must not be empty`,
				`spec.openTenant.allowedTiers[3]: Duplicate value: "dev"`,
				`spec.openTenant.allowedTiers[0]: Unsupported value: "batch": supported values: "training", "inference", "dev"`,
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := DefaultTierPolicy()
			tc.mutate(p)
			assert.Equal(t, tc.wantErrs, errStrings(p.Validate()))
		})
	}
}

func TestTierPolicyDefault(t *testing.T) {
	tests := map[string]struct {
		tier Tier
		want *GpuSharing
	}{
		"shared time-slices": {
			tier: Tier{Partitioning: PartitioningShared},
			want: &GpuSharing{Strategy: SharingTimeSlicing, TimeSlicing: &TimeSlicingConfig{Interval: TimeSliceDefault}},
		},
		"shared keeps mps": {
			tier: Tier{Partitioning: PartitioningShared, Sharing: &GpuSharing{Strategy: SharingMPS}},
			want: &GpuSharing{Strategy: SharingMPS},
		},
		"shared empty strategy": {
			tier: Tier{Partitioning: PartitioningShared, Sharing: &GpuSharing{TimeSlicing: &TimeSlicingConfig{Interval: TimeSliceLong}}},
			want: &GpuSharing{Strategy: SharingTimeSlicing, TimeSlicing: &TimeSlicingConfig{Interval: TimeSliceLong}},
		},
		"whole is exclusive": {tier: Tier{Partitioning: PartitioningWhole}, want: &GpuSharing{Strategy: SharingExclusive}},
		"mig is exclusive":   {tier: Tier{Partitioning: PartitioningMIG}, want: &GpuSharing{Strategy: SharingExclusive}},
		"whole keeps a wrong strategy for validation": {
			tier: Tier{Partitioning: PartitioningWhole, Sharing: &GpuSharing{Strategy: SharingMPS}},
			want: &GpuSharing{Strategy: SharingMPS},
		},
		"unknown partitioning is left alone": {tier: Tier{Partitioning: "Slices"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := &TierPolicy{Spec: TierPolicySpec{Tiers: []Tier{tc.tier}}}
			p.Default()
			assert.Equal(t, tc.want, p.Spec.Tiers[0].Sharing)
			p.Default()
			assert.Equal(t, tc.want, p.Spec.Tiers[0].Sharing, "Default is idempotent")
		})
	}
}
