package v1alpha1

import (
	"fmt"
	"maps"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Defaults of HealthPolicy.
const (
	DefaultHealthQuietPeriod    = 5 * time.Minute
	DefaultHealthMaxQuietPeriod = time.Hour
	DefaultHealthFlapWindow     = time.Hour
	DefaultOtherXIDs            = HealthNoSchedule
	DefaultDoubleBitECC         = HealthNoSchedule
	DefaultGPULost              = HealthNoSchedule
)

// defaultXIDActions is the default classification of XIDs, after NVIDIA's
// public XID catalogue ("XID Errors", https://docs.nvidia.com/deploy/xid-errors/,
// the "Xid messages" table and its "Possible causes" columns). XIDs the
// catalogue attributes to the application are recorded only: the GPU is
// fine, the process is not. XIDs it attributes to the hardware or driver
// (and that call for a GPU reset or a drain) keep new work off the GPU.
//
// Every XID not in this table gets OtherXIDs, NoSchedule by default: the
// catalogue lists well over a hundred codes and adds new ones with driver
// branches, most of them hardware, firmware or driver faults (GSP, NVLink,
// C2C, PCIe, memory) that a table can only learn late; NVIDIA's own device plugin
// (k8s-device-plugin, internal/rm/health.go) likewise skips only a short
// list of application XIDs (the five below and 109) and marks a GPU
// unhealthy on any other. A false alarm costs one quiet period of no new
// work on the GPU (running pods are not evicted by NoSchedule); a missed
// fault sends new pods to a broken GPU.
var defaultXIDActions = map[int32]HealthAction{
	// Application-caused: the offending process gets the error.
	13:  HealthIgnore, // Graphics Engine Exception
	31:  HealthIgnore, // GPU memory page fault
	43:  HealthIgnore, // GPU stopped processing (the channel was reset)
	45:  HealthIgnore, // Preemptive cleanup, due to previous errors
	68:  HealthIgnore, // NVDEC0 (video decoder) exception
	109: HealthIgnore, // Context switch timeout (an application that does not yield)
	// Hardware or driver: the GPU itself needs attention.
	48:  HealthNoSchedule, // Double Bit ECC Error
	63:  HealthNoSchedule, // ECC page retirement or row remapping recording event
	64:  HealthNoSchedule, // ECC page retirement or row remapper recording failure
	74:  HealthNoSchedule, // NVLink Error
	79:  HealthNoSchedule, // GPU has fallen off the bus
	92:  HealthNoSchedule, // High single-bit ECC error rate
	94:  HealthNoSchedule, // Contained ECC error
	95:  HealthNoSchedule, // Uncontained ECC error
	119: HealthNoSchedule, // GSP RPC timeout
	120: HealthNoSchedule, // GSP error
}

// DefaultXIDActions returns a copy of the default XID table.
func DefaultXIDActions() map[int32]HealthAction { return maps.Clone(defaultXIDActions) }

// HealthActions lists the supported actions.
func HealthActions() []HealthAction {
	return []HealthAction{HealthIgnore, HealthNoSchedule, HealthNoExecute}
}

// XIDAction returns the action for an XID: the policy's entry for the code,
// else the default table's, else OtherXIDs. h may be nil (the default).
func (h *HealthPolicy) XIDAction(code uint64) HealthAction {
	if h != nil {
		for _, x := range h.XIDs {
			if uint64(x.Code) == code {
				return x.Action
			}
		}
	}
	if code <= 1<<31-1 {
		if a, ok := defaultXIDActions[int32(code)]; ok {
			return a
		}
	}
	return orDefault(h, func(h *HealthPolicy) HealthAction { return h.OtherXIDs }, DefaultOtherXIDs)
}

// DoubleBitECCAction is the action for a double-bit ECC error.
func (h *HealthPolicy) DoubleBitECCAction() HealthAction {
	return orDefault(h, func(h *HealthPolicy) HealthAction { return h.DoubleBitECC }, DefaultDoubleBitECC)
}

// GPULostAction is the action for a lost GPU.
func (h *HealthPolicy) GPULostAction() HealthAction {
	return orDefault(h, func(h *HealthPolicy) HealthAction { return h.GPULost }, DefaultGPULost)
}

func orDefault(h *HealthPolicy, get func(*HealthPolicy) HealthAction, def HealthAction) HealthAction {
	if h == nil || get(h) == "" {
		return def
	}
	return get(h)
}

// Timing is the quiet period, its damping cap and the flap window, with
// defaults filled in. h may be nil.
func (h *HealthPolicy) Timing() (quiet, maxQuiet, flapWindow time.Duration) {
	quiet, maxQuiet, flapWindow = DefaultHealthQuietPeriod, DefaultHealthMaxQuietPeriod, DefaultHealthFlapWindow
	if h == nil {
		return quiet, maxQuiet, flapWindow
	}
	if h.QuietPeriod != nil {
		quiet = h.QuietPeriod.Duration
	}
	if h.MaxQuietPeriod != nil {
		maxQuiet = h.MaxQuietPeriod.Duration
	}
	if h.FlapWindow != nil {
		flapWindow = h.FlapWindow.Duration
	}
	return quiet, maxQuiet, flapWindow
}

// Validate checks the health section; nil is valid (the defaults).
func (h *HealthPolicy) Validate(fldPath *field.Path) field.ErrorList {
	if h == nil {
		return nil
	}
	var errs field.ErrorList
	seen := sets.New[int32]()
	for i, x := range h.XIDs {
		p := fldPath.Child("xids").Index(i)
		if x.Code < 1 || x.Code > 65535 {
			errs = append(errs, field.Invalid(p.Child("code"), x.Code, "must be between 1 and 65535"))
		}
		if seen.Has(x.Code) {
			errs = append(errs, field.Duplicate(p.Child("code"), x.Code))
		}
		seen.Insert(x.Code)
		errs = append(errs, validateAction(x.Action, false, p.Child("action"))...)
	}
	errs = append(errs, validateAction(h.OtherXIDs, true, fldPath.Child("otherXIDs"))...)
	errs = append(errs, validateAction(h.DoubleBitECC, true, fldPath.Child("doubleBitECC"))...)
	errs = append(errs, validateAction(h.GPULost, true, fldPath.Child("gpuLost"))...)
	quiet, maxQuiet, window := h.Timing()
	if quiet < time.Second {
		errs = append(errs, field.Invalid(fldPath.Child("quietPeriod"), quiet.String(), "must be at least 1s"))
	}
	if maxQuiet < time.Second {
		errs = append(errs, field.Invalid(fldPath.Child("maxQuietPeriod"), maxQuiet.String(), "must be at least 1s"))
	}
	if quiet > maxQuiet {
		errs = append(errs, field.Invalid(fldPath.Child("quietPeriod"), quiet.String(),
			fmt.Sprintf("must not exceed maxQuietPeriod (%s)", maxQuiet)))
	}
	if window < 0 {
		errs = append(errs, field.Invalid(fldPath.Child("flapWindow"), window.String(), "must not be negative"))
	}
	return errs
}

func validateAction(a HealthAction, optional bool, fldPath *field.Path) field.ErrorList {
	switch a {
	case HealthIgnore, HealthNoSchedule, HealthNoExecute:
		return nil
	case "":
		if optional {
			return nil
		}
		return field.ErrorList{field.Required(fldPath, `one of "Ignore", "NoSchedule", "NoExecute"`)}
	}
	return field.ErrorList{field.NotSupported(fldPath, a, HealthActions())}
}
