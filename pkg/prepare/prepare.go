// Package prepare prepares and unprepares one ResourceClaim on this node:
// claim + allocation + config → plan (pure, plan.go) → checkpoint
// PrepareStarted → hardware (MIG instance, compute mode) → CDI spec →
// checkpoint Prepared → CDI IDs. Unprepare reverses it. Every side effect
// sits behind a small interface (seams.go), so the package is tested with
// fakes and wired to pkg/nvgpu, pkg/checkpoint and pkg/cdi by pkg/plugin.
package prepare

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/tenancy"
)

// Options are the Preparer's collaborators; all but Namespaces and Sharer are required.
type Options struct {
	NodePool *NodePool
	Hardware Hardware
	Store    Store
	CDI      CDIWriter
	Caps     CapResolver
	// Policy supplies the tenants; nil means every namespace is its own tenant.
	Policy *v1alpha1.TierPolicy
	// Namespaces looks up namespace labels; nil means no labels.
	Namespaces NamespaceLabeler
	// Sharer sets up time-slicing and MPS; nil records them only.
	Sharer Sharer
	// Locks locks GPUs across the node's plugin processes (pkg/checkpoint's
	// Store); nil locks them in this process only.
	Locks GPULocker
	// Observe, when set, is told how long each step takes (benchmarks).
	Observe Observer
}

// Preparer prepares claims. It is safe for concurrent use: claims on
// different GPUs proceed in parallel.
type Preparer struct {
	opts Options
	// view is what the node publishes now; SetNodePool replaces it.
	view  atomic.Pointer[view]
	locks gpuLocks
	// modes is each GPU's compute mode as prepare last knew it; read and
	// written only under that GPU's lock.
	modesMu sync.Mutex
	modes   map[string]inventory.ComputeMode
}

// PreparedDevice is one prepared device of a claim.
type PreparedDevice struct {
	Request, Pool, Device string
	ShareID               *types.UID
	CDIDeviceIDs          []string
}

// New validates the options.
func New(opts Options) (*Preparer, error) {
	if opts.NodePool == nil || opts.Hardware == nil || opts.Store == nil || opts.CDI == nil || opts.Caps == nil {
		return nil, errors.New("prepare: NodePool, Hardware, Store, CDI and Caps are required")
	}
	p := &Preparer{opts: opts, modes: map[string]inventory.ComputeMode{}}
	p.SetNodePool(opts.NodePool, opts.Policy)
	return p, nil
}

// view is the published inventory and the policy it was built from.
type view struct {
	inv    *NodePool
	policy *v1alpha1.TierPolicy
}

// SetNodePool replaces what the node publishes and the policy, when the
// plugin republishes its ResourceSlices. Claims in flight finish with the
// view they started with; prepared claims are unprepared from their
// records, so they need no device of the new inventory.
func (p *Preparer) SetNodePool(inv *NodePool, policy *v1alpha1.TierPolicy) {
	p.modesMu.Lock()
	for uuid, g := range inv.gpus {
		if _, ok := p.modes[uuid]; !ok {
			p.modes[uuid] = g.ComputeMode
		}
	}
	p.modesMu.Unlock()
	p.view.Store(&view{inv: inv, policy: policy})
}

// Prepare prepares the claim and returns its devices with their CDI IDs.
// A claim already prepared returns the same IDs without touching hardware;
// a claim left half-prepared by a crash is rolled back first. On error
// nothing stays changed.
func (p *Preparer) Prepare(ctx context.Context, claim *resourceapi.ResourceClaim) ([]PreparedDevice, error) {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "claim", klog.KObj(claim), "uid", claim.UID)
	ctx = klog.NewContext(ctx, logger)
	v := p.view.Load()
	plan, err := v.inv.ClaimPlan(claim)
	if err != nil {
		return nil, fmt.Errorf("prepare claim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	hit(FPPrepareDecoded)
	tenant, err := p.tenant(ctx, v.policy, claim.Namespace)
	if err != nil {
		return nil, fmt.Errorf("prepare claim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	unlock, err := p.lockGPUs(plan.gpus())
	if err != nil {
		return nil, fmt.Errorf("prepare claim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	defer unlock()

	uid := string(claim.UID)
	if rec, ok := p.opts.Store.Get(uid); ok {
		if rec.Phase == checkpoint.PhasePrepared {
			logger.V(4).Info("Claim already prepared")
			return prepared(plan, rec), nil
		}
		logger.Info("Rolling back an unfinished claim before preparing it", "phase", rec.Phase)
		if err := p.undo(ctx, rec); err != nil {
			return nil, fmt.Errorf("prepare claim %s/%s: roll back %s: %w", claim.Namespace, claim.Name, rec.Phase, err)
		}
	}
	if err := checkTenancy(v.policy, claim, tenant, plan, p.opts.Store.Holding(plan.gpus()...)); err != nil {
		return nil, fmt.Errorf("prepare claim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	rec := p.newRecord(claim, tenant, plan)
	if err := p.put(rec); err != nil {
		return nil, fmt.Errorf("prepare claim %s/%s: checkpoint: %w", claim.Namespace, claim.Name, err)
	}
	hit(FPPrepareStarted)
	if err := p.apply(ctx, plan, &rec); err != nil {
		if uerr := p.undo(ctx, rec); uerr != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", uerr))
		}
		return nil, fmt.Errorf("prepare claim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	hit(FPPreparePrepared)
	logger.V(2).Info("Prepared claim", "devices", len(rec.Devices))
	return prepared(plan, rec), nil
}

// Unprepare reverses Prepare. Unpreparing an unknown claim succeeds.
func (p *Preparer) Unprepare(ctx context.Context, uid string) error {
	rec, ok := p.opts.Store.Get(uid)
	if !ok {
		return nil
	}
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "claim", klog.KRef(rec.Namespace, rec.Name), "uid", uid)
	ctx = klog.NewContext(ctx, logger)
	unlock, err := p.lockGPUs(recordGPUs(rec))
	if err != nil {
		return fmt.Errorf("unprepare claim %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	defer unlock()
	// Read again under the locks: a concurrent Unprepare may have won.
	if rec, ok = p.opts.Store.Get(uid); !ok {
		return nil
	}
	if err := p.undo(ctx, rec); err != nil {
		return fmt.Errorf("unprepare claim %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	logger.V(2).Info("Unprepared claim")
	return nil
}

// newRecord is the PrepareStarted record of the claim: written before any
// side effect, it says what apply is about to do, so that undo can reverse
// it after a crash at any point (the mode to restore, the MIG instance to
// destroy even if its creation was never recorded).
func (p *Preparer) newRecord(claim *resourceapi.ResourceClaim, tenant string, plan ClaimPlan) checkpoint.Claim {
	rec := checkpoint.Claim{UID: string(claim.UID), Namespace: claim.Namespace, Name: claim.Name, Tenant: tenant, Phase: checkpoint.PhasePrepareStarted,
		Pods: reservedPods(claim)}
	for _, d := range plan.Devices {
		rd := checkpoint.Device{Request: d.Request, Pool: d.Pool, Device: d.Device, GPUUUID: d.GPU.UUID,
			Sharing: string(d.Sharing()), Mode: string(d.Mode()), AdminAccess: d.AdminAccess, Config: d.RawConfig}
		switch {
		case d.AdminAccess:
			// Device nodes only: nothing to restore.
		case d.MIG != nil:
			rd.PlannedMIG = &checkpoint.PlannedMIG{Profile: d.MIG.Profile, Placement: d.MIG.Placement}
		case d.ExclusiveProcess():
			// The mode to restore, recorded before apply changes it; we
			// hold the GPU's lock, so it is current.
			rd.PreviousComputeMode = string(p.mode(d.GPU.UUID))
		}
		rec.Devices = append(rec.Devices, rd)
	}
	return rec
}

// reservedPods are the pods the claim is reserved for.
func reservedPods(claim *resourceapi.ResourceClaim) []checkpoint.Pod {
	var pods []checkpoint.Pod
	for _, r := range claim.Status.ReservedFor {
		if r.APIGroup == "" && r.Resource == "pods" {
			pods = append(pods, checkpoint.Pod{Name: r.Name, UID: string(r.UID)})
		}
	}
	return pods
}

// lockGPUs locks the GPUs in this process and, with a GPULocker, for every
// plugin process of the node.
func (p *Preparer) lockGPUs(uuids []string) (func(), error) {
	unlock := p.locks.lock(uuids)
	if p.opts.Locks == nil {
		return unlock, nil
	}
	release, err := p.opts.Locks.LockGPUs(uuids)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("lock GPUs: %w", err)
	}
	return func() { release(); unlock() }, nil
}

func (p *Preparer) tenant(ctx context.Context, policy *v1alpha1.TierPolicy, namespace string) (string, error) {
	var nsLabels map[string]string
	if p.opts.Namespaces != nil {
		defer p.done(StepTenant, p.start())
		var err error
		if nsLabels, err = p.opts.Namespaces.NamespaceLabels(ctx, namespace); err != nil {
			return "", fmt.Errorf("tenant of namespace %s: %w", namespace, err)
		}
	}
	return tenancy.Resolve(policy, nsLabels)
}

// checkTenancy refuses a device of a tier the tenant may not claim, and a
// GPU whose holders' use conflicts with the claim's (tenancy.CheckGPU): a
// GPU that holds another tenant's soft-shared claim, a whole GPU in use,
// MIG beside non-MIG use, another sharing strategy. The caller holds the
// GPUs' locks and passes the records on disk, so they are current for every
// plugin process of the node.
func checkTenancy(policy *v1alpha1.TierPolicy, claim *resourceapi.ResourceClaim, tenant string, plan ClaimPlan, records []checkpoint.Claim) error {
	name := claim.Namespace + "/" + claim.Name
	for _, d := range plan.Devices {
		if d.AdminAccess {
			continue
		}
		if d.Tier != "" && !tenancy.Allowed(policy, tenant, d.Tier) {
			return fmt.Errorf("claim %s of tenant %q: device %s is of tier %s, which the tenant may not claim: %w",
				name, tenancy.Display(tenant), d.Device, d.Tier, ErrTierNotAllowed)
		}
		var holders []tenancy.Use
		for _, r := range records {
			if r.UID == string(claim.UID) {
				continue
			}
			for _, rd := range r.Devices {
				if rd.GPUUUID == d.GPU.UUID && !rd.AdminAccess {
					holders = append(holders, recordUse(r, rd))
				}
			}
		}
		if err := tenancy.CheckGPU(d.GPU.UUID, d.use(name, tenant), holders); err != nil {
			return err
		}
	}
	return nil
}

// use is how the device holds its GPU, for tenancy.CheckGPU.
func (d DevicePlan) use(claim, tenant string) tenancy.Use {
	u := tenancy.Use{Claim: claim, Tenant: tenant, Mode: d.Mode()}
	if u.Mode == tenancy.ModeShared {
		u.Strategy = string(d.Sharing())
	}
	return u
}

// recordUse is how a recorded device holds its GPU. Records of releases
// before Mode are read from what they did: a MIG instance, soft sharing,
// else the whole GPU.
func recordUse(r checkpoint.Claim, d checkpoint.Device) tenancy.Use {
	u := tenancy.Use{Claim: r.Namespace + "/" + r.Name, Tenant: r.Tenant, Mode: tenancy.Mode(d.Mode)}
	if u.Mode == "" {
		switch {
		case d.MIG != nil || d.PlannedMIG != nil:
			u.Mode = tenancy.ModeMIG
		case d.Sharing != string(v1alpha1.SharingExclusive):
			u.Mode = tenancy.ModeShared
		default:
			u.Mode = tenancy.ModeWhole
		}
	}
	if u.Mode == tenancy.ModeShared {
		u.Strategy = d.Sharing
	}
	return u
}

func holdsSoftShared(r checkpoint.Claim, gpu string) bool {
	return slices.ContainsFunc(r.Devices, func(d checkpoint.Device) bool {
		return d.GPUUUID == gpu && !d.AdminAccess && d.Sharing != string(v1alpha1.SharingExclusive)
	})
}

func recordGPUs(r checkpoint.Claim) []string {
	var out []string
	for _, d := range r.Devices {
		out = append(out, d.GPUUUID)
	}
	return out
}

func (pl ClaimPlan) gpus() []string {
	var out []string
	for _, d := range pl.Devices {
		out = append(out, d.GPU.UUID)
	}
	return out
}

// prepared pairs the plan's devices with the CDI IDs of the record.
func prepared(plan ClaimPlan, rec checkpoint.Claim) []PreparedDevice {
	out := make([]PreparedDevice, 0, len(plan.Devices))
	for i, d := range plan.Devices {
		pd := PreparedDevice{Request: d.Request, Pool: d.Pool, Device: d.Device, ShareID: d.ShareID}
		if i < len(rec.Devices) {
			pd.CDIDeviceIDs = rec.Devices[i].CDIDeviceIDs
		}
		out = append(out, pd)
	}
	return out
}
