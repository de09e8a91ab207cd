package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestGpuConfigDefault(t *testing.T) {
	tests := map[string]struct {
		in   GpuConfig
		want GpuConfig
	}{
		"empty becomes exclusive": {
			in: GpuConfig{},
			want: GpuConfig{
				TypeMeta: typeMeta(),
				Sharing:  &GpuSharing{Strategy: SharingExclusive},
			},
		},
		"time-slicing gets the default interval": {
			in: GpuConfig{Sharing: &GpuSharing{Strategy: SharingTimeSlicing}},
			want: GpuConfig{
				TypeMeta: typeMeta(),
				Sharing: &GpuSharing{Strategy: SharingTimeSlicing,
					TimeSlicing: &TimeSlicingConfig{Interval: TimeSliceDefault}},
			},
		},
		"set interval is kept": {
			in: GpuConfig{Sharing: &GpuSharing{Strategy: SharingTimeSlicing,
				TimeSlicing: &TimeSlicingConfig{Interval: TimeSliceLong}}},
			want: GpuConfig{
				TypeMeta: typeMeta(),
				Sharing: &GpuSharing{Strategy: SharingTimeSlicing,
					TimeSlicing: &TimeSlicingConfig{Interval: TimeSliceLong}},
			},
		},
		"mps parameters are not invented": {
			in:   GpuConfig{Sharing: &GpuSharing{Strategy: SharingMPS}},
			want: GpuConfig{TypeMeta: typeMeta(), Sharing: &GpuSharing{Strategy: SharingMPS}},
		},
		"empty strategy is left for validation": {
			in:   GpuConfig{Sharing: &GpuSharing{MPS: &MPSConfig{}}},
			want: GpuConfig{TypeMeta: typeMeta(), Sharing: &GpuSharing{MPS: &MPSConfig{}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tc.in.DeepCopy()
			got.Default()
			assert.Equal(t, &tc.want, got)
			got.Default()
			assert.Equal(t, &tc.want, got, "Default is idempotent")
		})
	}
	assert.Equal(t, &GpuConfig{TypeMeta: typeMeta(), Sharing: &GpuSharing{Strategy: SharingExclusive}},
		DefaultGpuConfig())
}

func TestGpuConfigValidate(t *testing.T) {
	gi := resource.MustParse("1Gi")
	zero := resource.MustParse("0")
	tests := map[string]struct {
		sharing  *GpuSharing
		wantErrs []string
	}{
		"no sharing":        {},
		"exclusive":         {sharing: &GpuSharing{Strategy: SharingExclusive}},
		"time-slicing":      {sharing: &GpuSharing{Strategy: SharingTimeSlicing, TimeSlicing: &TimeSlicingConfig{Interval: TimeSliceShort}}},
		"time-slicing bare": {sharing: &GpuSharing{Strategy: SharingTimeSlicing}},
		"mps full": {sharing: &GpuSharing{Strategy: SharingMPS, MPS: &MPSConfig{
			DefaultActiveThreadPercentage: ptrTo[int32](100), DefaultPinnedDeviceMemoryLimit: &gi}}},
		"wrong case strategy": {
			sharing:  &GpuSharing{Strategy: "Mps"},
			wantErrs: []string{`sharing.strategy: Unsupported value: "Mps": supported values: "Exclusive", "MPS", "TimeSlicing"`},
		},
		"missing strategy": {
			sharing:  &GpuSharing{},
			wantErrs: []string{`sharing.strategy: Required value: one of "Exclusive", "MPS", "TimeSlicing"`},
		},
		"mps parameters with time-slicing": {
			sharing:  &GpuSharing{Strategy: SharingTimeSlicing, MPS: &MPSConfig{}},
			wantErrs: []string{`sharing.mps: Forbidden: only allowed when strategy is "MPS"`},
		},
		"time-slicing parameters with exclusive": {
			sharing:  &GpuSharing{Strategy: SharingExclusive, TimeSlicing: &TimeSlicingConfig{}},
			wantErrs: []string{`sharing.timeSlicing: Forbidden: only allowed when strategy is "TimeSlicing"`},
		},
		"bad interval": {
			sharing:  &GpuSharing{Strategy: SharingTimeSlicing, TimeSlicing: &TimeSlicingConfig{Interval: "short"}},
			wantErrs: []string{`sharing.timeSlicing.interval: Unsupported value: "short": supported values: "Default", "Short", "Medium", "Long"`},
		},
		"thread percentage zero and memory zero": {
			sharing: &GpuSharing{Strategy: SharingMPS, MPS: &MPSConfig{
				DefaultActiveThreadPercentage: ptrTo[int32](0), DefaultPinnedDeviceMemoryLimit: &zero}},
			wantErrs: []string{
				`sharing.mps.defaultActiveThreadPercentage: Invalid value: 0: must be between 1 and 100`,
				`sharing.mps.defaultPinnedDeviceMemoryLimit: Invalid value: "0": must be greater than zero`,
			},
		},
		"thread percentage over 100": {
			sharing:  &GpuSharing{Strategy: SharingMPS, MPS: &MPSConfig{DefaultActiveThreadPercentage: ptrTo[int32](101)}},
			wantErrs: []string{`sharing.mps.defaultActiveThreadPercentage: Invalid value: 101: must be between 1 and 100`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := &GpuConfig{TypeMeta: typeMeta(), Sharing: tc.sharing}
			assert.Equal(t, tc.wantErrs, errStrings(c.Validate()))
		})
	}
}

func TestResolveConfig(t *testing.T) {
	mps := &GpuConfig{Sharing: &GpuSharing{Strategy: SharingMPS,
		MPS: &MPSConfig{DefaultActiveThreadPercentage: ptrTo[int32](50)}}}
	ts := &GpuConfig{Sharing: &GpuSharing{Strategy: SharingTimeSlicing}}
	tests := map[string]struct {
		configs []*GpuConfig
		want    *GpuSharing
	}{
		"none is exclusive":     {want: &GpuSharing{Strategy: SharingExclusive}},
		"nils are skipped":      {configs: []*GpuConfig{nil, mps, nil}, want: mps.Sharing},
		"class only":            {configs: []*GpuConfig{mps}, want: mps.Sharing},
		"claim wins":            {configs: []*GpuConfig{mps, ts}, want: &GpuSharing{Strategy: SharingTimeSlicing, TimeSlicing: &TimeSlicingConfig{Interval: TimeSliceDefault}}},
		"claim without sharing": {configs: []*GpuConfig{mps, {}}, want: mps.Sharing},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ResolveConfig(tc.configs...)
			assert.Equal(t, typeMeta(), got.TypeMeta)
			assert.Equal(t, tc.want, got.Sharing)
			assert.Empty(t, got.Validate())
		})
	}
	t.Run("inputs are not modified or aliased", func(t *testing.T) {
		got := ResolveConfig(ts)
		assert.Nil(t, ts.Sharing.TimeSlicing)
		got.Sharing.Strategy = SharingExclusive
		assert.Equal(t, SharingTimeSlicing, ts.Sharing.Strategy)
	})
}
