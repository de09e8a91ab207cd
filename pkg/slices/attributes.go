package slices

import (
	"fmt"
	"strings"

	resourceapi "k8s.io/api/resource/v1"
)

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
