// Package usage attributes GPU use to the pods and claims Tierra prepared,
// and finds claims that sit idle or hold more GPU than they use.
//
// It is a pure core: process use comes from pkg/nvgpu (NVML per-process
// data), the PID → pod map from pkg/podproc, the claims from the kubelet
// plugin; Attribute joins them and Tracker keeps, per claim, when it was
// last busy and its peaks. pkg/metrics exports both.
package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/podproc"
)

// ProcessSource reads per-process GPU use (nvgpu.ProcessUseReader).
type ProcessSource interface {
	ProcessUse(ctx context.Context, since time.Time) ([]nvgpu.ProcessUse, error)
}

// PodMapper maps a host PID to its pod's UID (podproc.Mapper). Errors mean
// "not attributable"; they are counted, not fatal.
type PodMapper interface {
	PodUID(pid uint32) (string, error)
}

// ClaimLister lists the claims the plugin has prepared on this node, with
// the pods that hold them: the plugin answers it from its checkpoint and
// the claims' status.reservedFor.
type ClaimLister interface {
	PreparedClaims() []Claim
}

// Claim is a prepared claim as attribution and the tracker see it.
type Claim struct {
	UID, Namespace, Name string
	Tenant, Tier         string
	// Pods are the pods the claim is reserved for.
	Pods    []Pod
	Devices []Device
	// CostPerHour is what the claim's devices cost together, in dollars
	// per hour (the price book's costPerHour attributes); 0 if unknown.
	CostPerHour float64
}

// Pod is one pod a claim is reserved for.
type Pod struct {
	UID, Name string
}

// Device is one allocated device of a claim.
type Device struct {
	GPU GPURef
	// Product is the GPU's product name ("NVIDIA H200"); Profile the MIG
	// profile ("1g.18gb") of a MIG device, "" for a whole or shared GPU.
	Product string
	Profile string
	// MemoryBytes and Multiprocessors are the device's size (for a shared
	// GPU: the whole GPU's), against which its use is compared.
	MemoryBytes     uint64
	Multiprocessors int
}

// GPURef names a GPU, or a MIG instance of it.
type GPURef struct {
	UUID string
	// GPUInstanceID and ComputeInstanceID name a MIG instance; -1 for a
	// whole GPU.
	GPUInstanceID     int
	ComputeInstanceID int
}

// WholeGPU refers to GPU uuid without MIG.
func WholeGPU(uuid string) GPURef {
	return GPURef{UUID: uuid, GPUInstanceID: -1, ComputeInstanceID: -1}
}

// MIGRef refers to MIG instance gi/ci of GPU uuid.
func MIGRef(uuid string, gi, ci int) GPURef {
	return GPURef{UUID: uuid, GPUInstanceID: gi, ComputeInstanceID: ci}
}

func refOf(p nvgpu.ProcessUse) GPURef { return MIGRef(p.GPUUUID, p.GPUInstanceID, p.ComputeInstanceID) }

// PodGPUUse is the use one pod makes of one device of one of its claims:
// the sum over its processes there.
type PodGPUUse struct {
	Claim *Claim
	Pod   Pod
	GPU   GPURef
	// Processes is how many of the pod's processes run there.
	Processes int
	// MemoryBytes sums the processes' memory; MemoryKnown is false when
	// NVML hid the memory of any of them.
	MemoryBytes uint64
	MemoryKnown bool
	// SMRatio sums the processes' SM shares, capped at 1; SMKnown is false
	// where NVML takes no per-process samples (MIG).
	SMRatio float64
	SMKnown bool
}

// Unattributed is the use of one GPU by processes in no prepared claim's
// pod (host processes, the MPS server, pods of other drivers).
type Unattributed struct {
	GPU         GPURef
	Processes   int
	MemoryBytes uint64
}

// Attribution is the use on a node, split by pod and claim.
type Attribution struct {
	Pods         []PodGPUUse
	Unattributed []Unattributed
	// MapErrors counts processes whose pod could not be read for a reason
	// other than "not in a pod" or "exited".
	MapErrors int
}

// Attribute joins process use with the pods and claims: each process goes
// to the claim that is reserved for its pod and holds its GPU (or MIG
// instance); several processes of one pod on one device are summed. A pod
// whose two claims share one device is counted under each.
func Attribute(procs []nvgpu.ProcessUse, pods PodMapper, claims []Claim) Attribution {
	type key struct {
		claim int
		pod   string
		gpu   GPURef
	}
	byKey := map[key]*PodGPUUse{}
	unattr := map[GPURef]*Unattributed{}
	var out Attribution
	for _, p := range procs {
		ref := refOf(p)
		podUID, err := pods.PodUID(p.PID)
		matched := false
		if err == nil {
			for ci := range claims {
				pod, ok := claimHolds(&claims[ci], podUID, ref)
				if !ok {
					continue
				}
				matched = true
				k := key{ci, podUID, ref}
				u := byKey[k]
				if u == nil {
					u = &PodGPUUse{Claim: &claims[ci], Pod: pod, GPU: ref, MemoryKnown: true, SMKnown: true}
					byKey[k] = u
				}
				add(u, p)
			}
		} else if !errors.Is(err, podproc.ErrNotInPod) && !errors.Is(err, podproc.ErrNoProcess) {
			out.MapErrors++
		}
		if !matched {
			u := unattr[ref]
			if u == nil {
				u = &Unattributed{GPU: ref}
				unattr[ref] = u
			}
			u.Processes++
			if p.UsedMemoryKnown {
				u.MemoryBytes += p.UsedMemoryBytes
			}
		}
	}
	for _, u := range byKey {
		out.Pods = append(out.Pods, *u)
	}
	for _, u := range unattr {
		out.Unattributed = append(out.Unattributed, *u)
	}
	slices.SortFunc(out.Pods, func(a, b PodGPUUse) int {
		return cmp.Or(cmp.Compare(a.Claim.Namespace, b.Claim.Namespace), cmp.Compare(a.Pod.Name, b.Pod.Name),
			cmp.Compare(a.Claim.Name, b.Claim.Name), compareRef(a.GPU, b.GPU))
	})
	slices.SortFunc(out.Unattributed, func(a, b Unattributed) int { return compareRef(a.GPU, b.GPU) })
	return out
}

func add(u *PodGPUUse, p nvgpu.ProcessUse) {
	u.Processes++
	if p.UsedMemoryKnown {
		u.MemoryBytes += p.UsedMemoryBytes
	} else {
		u.MemoryKnown = false
	}
	u.SMKnown = u.SMKnown && p.SMUtilKnown
	u.SMRatio = min(1, u.SMRatio+p.SMUtilPercent/100)
}

// claimHolds returns the claim's pod with uid when the claim also holds
// the device ref.
func claimHolds(c *Claim, podUID string, ref GPURef) (Pod, bool) {
	i := slices.IndexFunc(c.Pods, func(p Pod) bool { return p.UID == podUID })
	if i < 0 || !slices.ContainsFunc(c.Devices, func(d Device) bool { return d.GPU == ref }) {
		return Pod{}, false
	}
	return c.Pods[i], true
}

func compareRef(a, b GPURef) int {
	return cmp.Or(cmp.Compare(a.UUID, b.UUID), cmp.Compare(a.GPUInstanceID, b.GPUInstanceID),
		cmp.Compare(a.ComputeInstanceID, b.ComputeInstanceID))
}

// Read takes one reading: process use since since, attributed to the
// claims.
func Read(ctx context.Context, src ProcessSource, pods PodMapper, claims ClaimLister, since time.Time) (Attribution, []Claim, error) {
	procs, err := src.ProcessUse(ctx, since)
	if err != nil {
		return Attribution{}, nil, fmt.Errorf("read GPU process use: %w", err)
	}
	prepared := claims.PreparedClaims()
	return Attribute(procs, pods, prepared), prepared, nil
}
