// Package checkpoint is the kubelet plugin's durable record of the claims it
// has prepared. Each claim is one file in the state directory, so preparing
// or unpreparing one claim never rewrites the records of the others. Records
// are versioned, checksummed and tied to the boot they were written in: after
// a reboot nothing is prepared any more, and Open hands such records back as
// stale for the caller to clean up.
package checkpoint

import (
	"encoding/json"
	"errors"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

// Phase is how far the plugin got with a claim.
type Phase string

const (
	// PhasePrepareStarted is recorded before any side effect of a prepare:
	// a crash after it may have left partial state that unprepare undoes.
	PhasePrepareStarted Phase = "PrepareStarted"
	// PhasePrepared is recorded once the claim is fully prepared and its
	// CDI spec is written.
	PhasePrepared Phase = "Prepared"
	// PhaseUnprepareStarted is recorded before the first side effect of an
	// unprepare; the record is deleted when the unprepare completes.
	PhaseUnprepareStarted Phase = "UnprepareStarted"
)

// Claim is the record of one ResourceClaim on this node.
type Claim struct {
	UID       string   `json:"uid"`
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Tenant    string   `json:"tenant,omitempty"`
	Phase     Phase    `json:"phase"`
	Devices   []Device `json:"devices"`
	// Pods are the pods the claim was reserved for when it was prepared
	// (metrics: which pod uses which GPU). Empty in older records.
	Pods []Pod `json:"pods,omitempty"`
}

// Pod is a pod a claim is reserved for (in the claim's namespace).
type Pod struct {
	Name string `json:"name"`
	UID  string `json:"uid,omitempty"`
}

// Device is one allocated device of a claim and what preparing it changed.
type Device struct {
	Request string `json:"request"`
	Pool    string `json:"pool"`
	// Device is the published device name.
	Device  string `json:"device"`
	GPUUUID string `json:"gpuUUID"`
	// Sharing is Exclusive, TimeSlicing or MPS.
	Sharing string `json:"sharing"`
	// Mode is how the claim holds the GPU: Whole, MIG or Shared
	// (tenancy.Mode). Empty in records of older releases: derive it.
	Mode string `json:"mode,omitempty"`
	// AdminAccess marks a monitoring device: prepare changed nothing on
	// the GPU for it, and it holds the GPU against no other claim.
	AdminAccess bool `json:"adminAccess,omitempty"`
	// PlannedMIG is the MIG instance prepare is about to create, recorded
	// before it is created, so that an instance whose MIG record was never
	// written (a crash, a full disk) is still found and destroyed.
	PlannedMIG *PlannedMIG `json:"plannedMIG,omitempty"`
	// MIG is the MIG instance prepare created.
	MIG *MIGInstance `json:"mig,omitempty"`
	// PreviousComputeMode is the compute mode to restore on unprepare.
	PreviousComputeMode string   `json:"previousComputeMode,omitempty"`
	CDIDeviceIDs        []string `json:"cdiDeviceIDs,omitempty"`
	// Config is the resolved GpuConfig; read it back with
	// v1alpha1.DecodeGpuConfigLenient.
	Config json.RawMessage `json:"config,omitempty"`
}

// MIGInstance is a MIG instance the plugin created for a device.
type MIGInstance struct {
	Profile           string                 `json:"profile"`
	Placement         inventory.MIGPlacement `json:"placement"`
	GPUInstanceID     int                    `json:"gpuInstanceID"`
	ComputeInstanceID int                    `json:"computeInstanceID"`
	UUID              string                 `json:"uuid,omitempty"`
}

// PlannedMIG is a MIG instance to create: profile and placement.
type PlannedMIG struct {
	Profile   string                 `json:"profile"`
	Placement inventory.MIGPlacement `json:"placement"`
}

// Options configure Open.
type Options struct {
	// Dir is the state directory, created 0700 if absent.
	Dir string
	// BootID identifies the current boot. Empty: read
	// /proc/sys/kernel/random/boot_id.
	BootID string
	// Durability is what a write survives once it returns. Default
	// SurviveHostCrash.
	Durability Durability
}

// Durability is what a checkpoint write survives.
type Durability string

const (
	// SurviveHostCrash fsyncs every record and its directory: a record
	// written is there after a power loss.
	SurviveHostCrash Durability = "HostCrash"
	// SurviveProcessCrash writes each record atomically (temp file and
	// rename) without fsync: it survives the writer being killed, not a
	// power loss. That is enough for records tied to a boot id: a host
	// crash reboots the node, and every record of an earlier boot is
	// stale anyway, while a lost or torn one is quarantined.
	SurviveProcessCrash Durability = "ProcessCrash"
)

// Report is what Open found besides the live records.
type Report struct {
	// Stale are the claims recorded under a different boot id: nothing of
	// them is prepared any more; the caller cleans up what outlives a
	// reboot (CDI specs) and they are no longer in the store.
	Stale []Claim
	// Quarantined are the paths of corrupt records moved aside (into
	// Dir/quarantine/).
	Quarantined []string
	// Problems says, for every record that could not be loaded, why; each
	// wraps ErrCorrupt or ErrUnsupportedVersion and names the file. A
	// record that could not even be moved aside is reported here only.
	Problems []error
}

var (
	// ErrCorrupt marks a record that cannot be read, does not decode or
	// whose checksum does not match.
	ErrCorrupt = errors.New("corrupt checkpoint record")
	// ErrUnsupportedVersion marks a record written in a format version
	// this release does not know (written by a newer plugin).
	ErrUnsupportedVersion = errors.New("unsupported checkpoint version")
	// ErrInvalidClaim marks a claim Put refuses to record.
	ErrInvalidClaim = errors.New("invalid checkpoint claim")
)

// Clone returns a deep copy of c, so that the store and its callers never
// share slices.
func (c Claim) Clone() Claim {
	out := c
	if c.Pods != nil {
		out.Pods = append([]Pod(nil), c.Pods...)
	}
	if c.Devices != nil {
		out.Devices = make([]Device, len(c.Devices))
		for i, d := range c.Devices {
			out.Devices[i] = d.clone()
		}
	}
	return out
}

func (d Device) clone() Device {
	out := d
	if d.MIG != nil {
		m := *d.MIG
		out.MIG = &m
	}
	if d.PlannedMIG != nil {
		m := *d.PlannedMIG
		out.PlannedMIG = &m
	}
	if d.CDIDeviceIDs != nil {
		out.CDIDeviceIDs = append([]string(nil), d.CDIDeviceIDs...)
	}
	if d.Config != nil {
		out.Config = append(json.RawMessage(nil), d.Config...)
	}
	return out
}
