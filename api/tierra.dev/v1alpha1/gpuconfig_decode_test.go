package v1alpha1

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
)

const head = `"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig"`

func TestDecodeGpuConfig(t *testing.T) {
	tests := map[string]struct {
		raw         string
		want        *GpuConfig
		wantErr     string // strict
		wantLenient *GpuConfig
		wantLenErr  string
	}{
		"minimal is defaulted to exclusive": {
			raw:  `{` + head + `}`,
			want: DefaultGpuConfig(),
		},
		"mps with limits": {
			raw: `{` + head + `,"sharing":{"strategy":"MPS","mps":{"defaultActiveThreadPercentage":25,"defaultPinnedDeviceMemoryLimit":"4Gi"}}}`,
			want: &GpuConfig{TypeMeta: typeMeta(), Sharing: &GpuSharing{Strategy: SharingMPS, MPS: &MPSConfig{
				DefaultActiveThreadPercentage:  ptrTo[int32](25),
				DefaultPinnedDeviceMemoryLimit: ptrTo(resource.MustParse("4Gi")),
			}}},
		},
		"misspelt nested field": {
			raw:     `{` + head + `,"sharing":{"strategy":"MPS","mps":{"defaultActiveThreadPercentag":25}}}`,
			wantErr: `decode GpuConfig: unknown field "sharing.mps.defaultActiveThreadPercentag"`,
			wantLenient: &GpuConfig{TypeMeta: typeMeta(),
				Sharing: &GpuSharing{Strategy: SharingMPS, MPS: &MPSConfig{}}},
		},
		"wrong case field name": {
			raw:         `{` + head + `,"Sharing":{"strategy":"MPS"}}`,
			wantErr:     `decode GpuConfig: unknown field "Sharing"`,
			wantLenient: DefaultGpuConfig(),
		},
		"duplicate field": {
			raw:     `{` + head + `,"sharing":{"strategy":"MPS","strategy":"TimeSlicing"}}`,
			wantErr: `decode GpuConfig: duplicate field "sharing.strategy"`,
			wantLenient: &GpuConfig{TypeMeta: typeMeta(), Sharing: &GpuSharing{Strategy: SharingTimeSlicing,
				TimeSlicing: &TimeSlicingConfig{Interval: TimeSliceDefault}}},
		},
		"invalid value is rejected strictly, kept leniently": {
			raw:         `{` + head + `,"sharing":{"strategy":"Mps"}}`,
			wantErr:     `invalid GpuConfig: sharing.strategy: Unsupported value: "Mps": supported values: "Exclusive", "MPS", "TimeSlicing"`,
			wantLenient: &GpuConfig{TypeMeta: typeMeta(), Sharing: &GpuSharing{Strategy: "Mps"}},
		},
		"missing apiVersion": {
			raw:        `{"kind":"GpuConfig"}`,
			wantErr:    `decode GpuConfig: apiVersion "": want "tierra.dev/v1alpha1"`,
			wantLenErr: `decode GpuConfig: apiVersion "": want "tierra.dev/v1alpha1"`,
		},
		"other driver's config": {
			raw:        `{"apiVersion":"resource.nvidia.com/v1beta1","kind":"GpuConfig"}`,
			wantErr:    `decode GpuConfig: apiVersion "resource.nvidia.com/v1beta1": want "tierra.dev/v1alpha1"`,
			wantLenErr: `decode GpuConfig: apiVersion "resource.nvidia.com/v1beta1": want "tierra.dev/v1alpha1"`,
		},
		"wrong kind": {
			raw:        `{"apiVersion":"tierra.dev/v1alpha1","kind":"GPUConfig"}`,
			wantErr:    `decode GpuConfig: kind "GPUConfig": want "GpuConfig"`,
			wantLenErr: `decode GpuConfig: kind "GPUConfig": want "GpuConfig"`,
		},
		"not json": {
			raw:        `sharing: {}`,
			wantErr:    `decode GpuConfig: invalid character 's' looking for beginning of value`,
			wantLenErr: `decode GpuConfig: invalid character 's' looking for beginning of value`,
		},
		"wrong type": {
			raw:        `{` + head + `,"sharing":{"strategy":"MPS","mps":{"defaultActiveThreadPercentage":"25"}}}`,
			wantErr:    `decode GpuConfig: json: cannot unmarshal string into Go struct field MPSConfig.sharing.mps.defaultActiveThreadPercentage of type int32`,
			wantLenErr: `decode GpuConfig: json: cannot unmarshal string into Go struct field MPSConfig.sharing.mps.defaultActiveThreadPercentage of type int32`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeGpuConfig([]byte(tc.raw))
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				assert.Nil(t, got)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
			}

			wantLenient := tc.wantLenient
			if wantLenient == nil {
				wantLenient = tc.want
			}
			got, err = DecodeGpuConfigLenient([]byte(tc.raw))
			if tc.wantLenErr != "" {
				require.EqualError(t, err, tc.wantLenErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, wantLenient, got)
		})
	}
}

func TestGpuConfigRoundTrip(t *testing.T) {
	configs := map[string]*GpuConfig{
		"default": DefaultGpuConfig(),
		"time-slicing": {TypeMeta: typeMeta(), Sharing: &GpuSharing{Strategy: SharingTimeSlicing,
			TimeSlicing: &TimeSlicingConfig{Interval: TimeSliceMedium}}},
		"mps": {TypeMeta: typeMeta(), Sharing: &GpuSharing{Strategy: SharingMPS, MPS: &MPSConfig{
			DefaultActiveThreadPercentage:  ptrTo[int32](1),
			DefaultPinnedDeviceMemoryLimit: ptrTo(resource.MustParse("512Mi")),
		}}},
	}
	for name, c := range configs {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(c)
			require.NoError(t, err)
			got, err := DecodeGpuConfig(raw)
			require.NoError(t, err)
			assert.Equal(t, c, got)
		})
	}
}
