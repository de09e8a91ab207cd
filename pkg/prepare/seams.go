package prepare

import (
	"context"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/cdi"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/sharing"
)

// Store keeps one record per claim across restarts (pkg/checkpoint).
// It must be safe for concurrent use.
type Store interface {
	Put(c checkpoint.Claim) error
	Get(uid string) (checkpoint.Claim, bool)
	Delete(uid string) error
	List() []checkpoint.Claim
	// Holding returns the records with a device on one of the GPUs.
	Holding(gpuUUIDs ...string) []checkpoint.Claim
}

// GPULocker locks GPUs for every plugin process of the node
// (pkg/checkpoint's Store.LockGPUs); the returned function unlocks them.
type GPULocker interface {
	LockGPUs(uuids []string) (func(), error)
}

// CDIWriter writes and deletes a claim's CDI spec (pkg/cdi). Write returns
// one CDI device ID per device, in order.
type CDIWriter interface {
	Write(claimUID string, devices []cdi.Device) ([]string, error)
	Delete(claimUID string) error
}

// Hardware is what prepare changes on the GPUs (pkg/nvgpu).
type Hardware interface {
	CreateMIGInstance(ctx context.Context, opts nvgpu.CreateMIGOptions) (inventory.MIGInstance, error)
	DestroyComputeInstance(ctx context.Context, ref nvgpu.ComputeInstanceRef) error
	DestroyGPUInstance(ctx context.Context, gpuUUID string, gpuInstanceID int) error
	SetComputeMode(ctx context.Context, gpuUUID string, mode inventory.ComputeMode) error
}

// CapResolver names the device nodes that grant access to one MIG GPU
// instance and compute instance (/dev/nvidia-caps/nvidia-cap<N>); every
// nvgpu.Interface, real or fake, is one.
type CapResolver interface {
	MIGCaps(gpu inventory.GPU, gpuInstanceID, computeInstanceID int) ([]string, error)
}

// Sharer sets up and tears down time-slicing and MPS (pkg/sharing). first
// and last say whether the claim is the only one soft-sharing the GPU.
type Sharer interface {
	Share(ctx context.Context, gpuUUID string, s *v1alpha1.GpuSharing, first bool) (sharing.Edits, error)
	Unshare(ctx context.Context, gpuUUID string, strategy v1alpha1.SharingStrategy, last bool) error
}

// NamespaceLabeler returns a namespace's labels, for tenant resolution.
type NamespaceLabeler interface {
	NamespaceLabels(ctx context.Context, namespace string) (map[string]string, error)
}
