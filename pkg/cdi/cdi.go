// Package cdi writes the Container Device Interface spec of each prepared
// claim: one file per claim, so that preparing or unpreparing a claim
// touches only its own file. It writes with tags.cncf.io/container-device-interface's
// types and validation but not its registry, which re-reads every spec in
// the directory on each change.
package cdi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
)

const (
	// Vendor and Class make up the kind of the specs written here.
	Vendor = "gpu.tierra.dev"
	Class  = "claim"
	// Kind is the CDI kind of every device ID Write returns.
	Kind = Vendor + "/" + Class
	// DefaultDir is where container runtimes look for dynamic specs.
	DefaultDir = "/var/run/cdi"

	specExt    = ".json"
	tempPrefix = ".tierra-tmp-"
)

// ErrInvalid marks input that would not make a valid CDI spec.
var ErrInvalid = errors.New("invalid CDI input")

// Options configure New.
type Options struct {
	// Dir is the CDI spec directory (default DefaultDir), created if absent.
	Dir string
}

// Device is one device of a claim's spec.
type Device struct {
	// Name is unique within the claim and a valid CDI device name part
	// (e.g. the published device name).
	Name string
	// DeviceNodes are absolute host paths, e.g. /dev/nvidia0,
	// /dev/nvidiactl, /dev/nvidia-caps/nvidia-cap21.
	DeviceNodes []string
	// Env are "KEY=value" entries.
	Env    []string
	Mounts []Mount
}

// Mount is a bind mount of a host path into the container.
type Mount struct {
	HostPath, ContainerPath string
	ReadOnly                bool
}

// Writer writes and removes per-claim CDI specs in one directory. It is
// safe for concurrent use.
type Writer struct {
	dir string
}

// New returns a Writer for opts.Dir, creating the directory if needed and
// removing temp files left by an interrupted Write.
func New(opts Options) (*Writer, error) {
	dir := opts.Dir
	if dir == "" {
		dir = DefaultDir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create CDI spec dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read CDI spec dir: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return &Writer{dir: dir}, nil
}

// Dir is the directory specs are written to.
func (w *Writer) Dir() string { return w.dir }

// Write writes (atomically replaces) the claim's spec and returns the fully
// qualified CDI device IDs, one per Device, in order (kind
// "gpu.tierra.dev/claim", device name "<claimUID>-<Device.Name>"). The spec
// is validated with the CDI library's own validation before it is written;
// on any error nothing is written.
func (w *Writer) Write(claimUID string, devices []Device) ([]string, error) {
	spec, err := buildSpec(claimUID, devices)
	if err != nil {
		return nil, err
	}
	if err := w.writeSpec(claimUID, spec); err != nil {
		return nil, err
	}
	ids := make([]string, len(spec.Devices))
	for i, d := range spec.Devices {
		ids[i] = parser.QualifiedName(Vendor, Class, d.Name)
	}
	return ids, nil
}

// Delete removes the claim's spec. An absent spec is not an error.
func (w *Writer) Delete(claimUID string) error {
	if err := validateClaimUID(claimUID); err != nil {
		return err
	}
	err := os.Remove(w.path(claimUID))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete CDI spec of claim %s: %w", claimUID, err)
	}
	return nil
}

// List returns the UIDs of the claims that have a spec file, for cleaning
// up specs whose claim is gone.
func (w *Writer) List() ([]string, error) {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, fmt.Errorf("list CDI specs: %w", err)
	}
	prefix := fileName("")
	prefix = strings.TrimSuffix(prefix, specExt)
	var uids []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, specExt) {
			continue
		}
		uid := strings.TrimSuffix(strings.TrimPrefix(name, prefix), specExt)
		if uid != "" {
			uids = append(uids, uid)
		}
	}
	return uids, nil
}

func (w *Writer) path(claimUID string) string {
	return filepath.Join(w.dir, fileName(claimUID))
}

// fileName follows the CDI convention for transient specs:
// "gpu.tierra.dev-claim_<claimUID>.json".
func fileName(claimUID string) string {
	return cdiapi.GenerateTransientSpecName(Vendor, Class, claimUID) + specExt
}
