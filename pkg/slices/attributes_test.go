package slices

import (
	"testing"

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
