package slices

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/utils/ptr"
)

func TestAttributeAccessors(t *testing.T) {
	d := resourceapi.Device{Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
		AttrTier:        {StringValue: ptr.To("inference")},
		AttrCostPerHour: {IntValue: ptr.To(int64(437500))},
	}}
	assert.Equal(t, "inference", StringAttribute(d, AttrTier))
	assert.Empty(t, StringAttribute(d, AttrMIGProfile), "absent")
	assert.Empty(t, StringAttribute(d, AttrCostPerHour), "an int is not a string")
	v, ok := IntAttribute(d, AttrCostPerHour)
	assert.True(t, ok)
	assert.Equal(t, int64(437500), v)
	_, ok = IntAttribute(d, AttrTier)
	assert.False(t, ok, "a string is not an int")
}

func TestCELAttribute(t *testing.T) {
	assert.Equal(t, `device.attributes["gpu.tierra.dev"].tier`, CELAttribute(AttrTier))
	assert.Equal(t, `device.attributes["resource.kubernetes.io"].pcieRoot`, CELAttribute("resource.kubernetes.io/pcieRoot"))
}

func TestTruncateValue(t *testing.T) {
	max := resourceapi.DeviceAttributeMaxValueLength
	tests := map[string]struct {
		in, want string
	}{
		"short, kept":            {in: "NVIDIA H200", want: "NVIDIA H200"},
		"exactly the limit":      {in: strings.Repeat("a", max), want: strings.Repeat("a", max)},
		"one over, prefix kept":  {in: strings.Repeat("a", max) + "b", want: strings.Repeat("a", max)},
		"multi-byte at the edge": {in: strings.Repeat("a", max-1) + "é", want: strings.Repeat("a", max-1)},
		"empty":                  {in: "", want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := truncateValue(tc.in)
			assert.Equal(t, tc.want, got)
			assert.LessOrEqual(t, len(got), max)
			assert.True(t, utf8.ValidString(got), "no split character")
		})
	}
}
