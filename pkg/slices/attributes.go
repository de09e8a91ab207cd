package slices

import (
	"fmt"
	"strings"
	"unicode/utf8"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/utils/ptr"
)

// stringAttribute is the attribute holding v, shortened to the API's limit
// on a string value (resourceapi.DeviceAttributeMaxValueLength bytes, which
// the apiserver enforces on every ResourceSlice). Every string attribute
// this package publishes is made here: NVML reports product names,
// architectures and topology strings of its own choosing, and one over the
// limit must not get the whole node's slices refused. (Tenant slot names,
// tenants.go, are DNS labels of at most 63 and need no shortening.) The
// value keeps its
// prefix (the most telling part of a product name, e.g. "NVIDIA H200 …"),
// cut at a UTF-8 character boundary.
func stringAttribute(v string) resourceapi.DeviceAttribute {
	return resourceapi.DeviceAttribute{StringValue: ptr.To(truncateValue(v))}
}

// truncateValue cuts v to at most DeviceAttributeMaxValueLength bytes
// without splitting a UTF-8 character.
func truncateValue(v string) string {
	if len(v) <= resourceapi.DeviceAttributeMaxValueLength {
		return v
	}
	cut := resourceapi.DeviceAttributeMaxValueLength
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut]
}

// StringAttribute reads a string attribute this package published on a
// device (name is one of the Attr… constants); "" when the device has none.
// Consumers of published devices (the prepare path, the controller's status,
// the planner, the simulator) read attributes through it and the int variant,
// so the attribute schema lives in one place.
func StringAttribute(d resourceapi.Device, name resourceapi.QualifiedName) string {
	if a, ok := d.Attributes[name]; ok && a.StringValue != nil {
		return *a.StringValue
	}
	return ""
}

// IntAttribute reads an int attribute this package published on a device;
// ok is false when the device has none.
func IntAttribute(d resourceapi.Device, name resourceapi.QualifiedName) (value int64, ok bool) {
	if a, found := d.Attributes[name]; found && a.IntValue != nil {
		return *a.IntValue, true
	}
	return 0, false
}

// CELAttribute is the CEL expression that reads a published attribute in a
// DeviceClass or claim selector, e.g. CELAttribute(AttrTier) is
// `device.attributes["gpu.tierra.dev"].tier`.
func CELAttribute(name resourceapi.QualifiedName) string {
	domain, id, found := strings.Cut(string(name), "/")
	if !found {
		domain, id = DriverName, domain
	}
	return fmt.Sprintf("device.attributes[%q].%s", domain, id)
}
