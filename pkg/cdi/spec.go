package cdi

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
	specs "tags.cncf.io/container-device-interface/specs-go"
)

// buildSpec turns the devices into a CDI spec of the lowest version that
// can express them, after checking the input field by field so that errors
// name the offending field.
func buildSpec(claimUID string, devices []Device) (*specs.Spec, error) {
	if err := validateClaimUID(claimUID); err != nil {
		return nil, err
	}
	if errs := validateDevices(claimUID, devices); len(errs) > 0 {
		return nil, fmt.Errorf("%w for claim %s: %w", ErrInvalid, claimUID, errs.ToAggregate())
	}
	spec := &specs.Spec{Kind: Kind, Devices: make([]specs.Device, 0, len(devices))}
	for _, d := range devices {
		spec.Devices = append(spec.Devices, specs.Device{
			Name:           deviceName(claimUID, d.Name),
			ContainerEdits: containerEdits(d),
		})
	}
	v, err := specs.MinimumRequiredVersion(spec)
	if err != nil {
		return nil, fmt.Errorf("CDI spec version for claim %s: %w", claimUID, err)
	}
	spec.Version = v
	return spec, nil
}

func containerEdits(d Device) specs.ContainerEdits {
	var e specs.ContainerEdits
	if len(d.Env) > 0 {
		e.Env = append([]string(nil), d.Env...)
	}
	for _, p := range d.DeviceNodes {
		e.DeviceNodes = append(e.DeviceNodes, &specs.DeviceNode{Path: p})
	}
	for _, m := range d.Mounts {
		opts := []string{"nosuid", "nodev", "rbind", "rprivate"}
		if m.ReadOnly {
			opts = append([]string{"ro"}, opts...)
		}
		e.Mounts = append(e.Mounts, &specs.Mount{HostPath: m.HostPath, ContainerPath: m.ContainerPath, Options: opts})
	}
	return e
}

func deviceName(claimUID, name string) string { return claimUID + "-" + name }

func validateClaimUID(uid string) error {
	if uid == "" {
		return fmt.Errorf("%w: claimUID: must not be empty", ErrInvalid)
	}
	// The UID starts every device name and is part of the file name.
	if err := parser.ValidateDeviceName(uid); err != nil {
		return fmt.Errorf("%w: claimUID %q: %w", ErrInvalid, uid, err)
	}
	return nil
}

func validateDevices(claimUID string, devices []Device) field.ErrorList {
	root := field.NewPath("devices")
	if len(devices) == 0 {
		return field.ErrorList{field.Required(root, "a claim's spec needs at least one device")}
	}
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, d := range devices {
		p := root.Index(i)
		switch {
		case d.Name == "":
			errs = append(errs, field.Required(p.Child("name"), ""))
		case seen[d.Name]:
			errs = append(errs, field.Duplicate(p.Child("name"), d.Name))
		default:
			if err := parser.ValidateDeviceName(deviceName(claimUID, d.Name)); err != nil {
				errs = append(errs, field.Invalid(p.Child("name"), d.Name, err.Error()))
			}
		}
		seen[d.Name] = true
		errs = append(errs, validateEdits(p, d)...)
	}
	return errs
}

func validateEdits(p *field.Path, d Device) field.ErrorList {
	var errs field.ErrorList
	if len(d.DeviceNodes)+len(d.Env)+len(d.Mounts) == 0 {
		errs = append(errs, field.Required(p, "a device needs at least one device node, env entry or mount"))
	}
	for i, e := range d.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			errs = append(errs, field.Invalid(p.Child("env").Index(i), e, `want "KEY=value"`))
		}
	}
	for i, n := range d.DeviceNodes {
		errs = append(errs, validateAbs(p.Child("deviceNodes").Index(i), n)...)
	}
	for i, m := range d.Mounts {
		mp := p.Child("mounts").Index(i)
		errs = append(errs, validateAbs(mp.Child("hostPath"), m.HostPath)...)
		errs = append(errs, validateAbs(mp.Child("containerPath"), m.ContainerPath)...)
	}
	return errs
}

func validateAbs(p *field.Path, v string) field.ErrorList {
	switch {
	case v == "":
		return field.ErrorList{field.Required(p, "")}
	case !path.IsAbs(v):
		return field.ErrorList{field.Invalid(p, v, "must be an absolute path")}
	case path.Clean(v) != v:
		return field.ErrorList{field.Invalid(p, v, "must be a clean path (no //, . or ..)")}
	}
	return nil
}

// writeSpec encodes the spec to a temp file, has the CDI library read and
// validate that very file, and only then renames it into place.
func (w *Writer) writeSpec(claimUID string, spec *specs.Spec) (err error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode CDI spec of claim %s: %w", claimUID, err)
	}
	tmp, err := os.CreateTemp(w.dir, tempPrefix+claimUID+"-*")
	if err != nil {
		return fmt.Errorf("write CDI spec of claim %s: %w", claimUID, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write CDI spec of claim %s: %w", claimUID, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write CDI spec of claim %s: %w", claimUID, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write CDI spec of claim %s: %w", claimUID, err)
	}
	if _, err := cdiapi.ReadSpec(tmp.Name(), 0); err != nil {
		return fmt.Errorf("%w: CDI spec of claim %s: %w", ErrInvalid, claimUID, err)
	}
	if err := os.Rename(tmp.Name(), w.path(claimUID)); err != nil {
		return fmt.Errorf("write CDI spec of claim %s: %w", claimUID, err)
	}
	return nil
}
