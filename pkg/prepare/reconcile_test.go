package prepare_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/sharing"
	tslices "github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

const timeSliceLong = `{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"TimeSlicing","timeSlicing":{"interval":"Long"}}}`

// restartEnv is an env whose Preparer restarts as the plugin's does:
// rediscover the GPUs, reopen the checkpoint, reconcile with its report.
type restartEnv struct {
	*env
	tier   string
	policy *v1alpha1.TierPolicy
	opts   prepare.Options
	runner *sharing.FakeRunner
	mps    *sharing.Manager
}

func newRestartEnv(t *testing.T, tier string, policy *v1alpha1.TierPolicy) *restartEnv {
	r := &restartEnv{tier: tier, policy: policy, runner: &sharing.FakeRunner{}}
	var err error
	r.mps, err = sharing.New(sharing.Options{Runner: r.runner, MPSDir: t.TempDir()})
	require.NoError(t, err)
	r.env = newEnvPolicy(t, tier, policy, nil, func(o *prepare.Options) {
		o.Sharer = r.mps
		r.opts = *o
	})
	return r
}

// restart starts a new Preparer on the same node and state and returns the
// commands the sharing runner ran during its reconcile.
func (r *restartEnv) restart(t *testing.T) (checkpoint.Report, []sharing.Cmd) {
	m, err := r.gpus.Machine(r.ctx)
	require.NoError(t, err)
	dr, err := tslices.Build(tslices.Node{Name: node, Labels: map[string]string{v1alpha1.NodeTierLabel: r.tier}, Machine: m}, r.policy)
	require.NoError(t, err)
	inv, err := prepare.NewNodePool(v1alpha1.DriverName, node, dr, m)
	require.NoError(t, err)
	store, report, err := checkpoint.Open(r.ctx, checkpoint.Options{Dir: r.store.Dir(), BootID: "boot-1"})
	require.NoError(t, err)
	r.opts.NodePool, r.opts.Store = inv, store
	r.store = store
	r.prep, err = prepare.New(r.opts)
	require.NoError(t, err)
	specs, err := r.cdi.List()
	require.NoError(t, err)
	before := len(r.runner.Commands())
	require.NoError(t, r.prep.Reconcile(r.ctx, prepare.ReconcileInput{Machine: m, CDISpecs: specs, Quarantined: report.Quarantined}))
	return report, r.runner.Commands()[before:]
}

// prepare allocates and prepares the claim and returns the GPU it is on.
func (r *restartEnv) prepare(t *testing.T, claim *resourceapi.ResourceClaim) string {
	claim = r.allocate(t, claim)
	_, err := r.prep.Prepare(r.ctx, claim)
	require.NoError(t, err)
	rec, ok := r.store.Get(string(claim.UID))
	require.True(t, ok)
	return rec.Devices[0].GPUUUID
}

// corrupt breaks the claim's record on disk, so that the next Open
// quarantines it.
func (r *restartEnv) corrupt(t *testing.T, uid string) {
	require.NoError(t, os.WriteFile(filepath.Join(r.store.Dir(), uid+".json"), []byte("{torn"), 0o600))
}

// instances lists the live MIG instances as "GPU-uuid 1g.18gb@6".
func (r *restartEnv) instances(t *testing.T) []string {
	m, err := r.gpus.Machine(r.ctx)
	require.NoError(t, err)
	var out []string
	for _, g := range m.GPUs {
		if g.MIG == nil {
			continue
		}
		for _, inst := range g.MIG.Instances {
			out = append(out, fmt.Sprintf("%s %s@%d", g.UUID, inst.ProfileName, inst.Placement.Start))
		}
	}
	slices.Sort(out)
	return out
}

// timeSlices are the GPUs the commands set a time-slice on, with the value.
func timeSlices(cmds []sharing.Cmd) map[string]string {
	out := map[string]string{}
	for _, c := range cmds {
		if len(c.Argv) == 5 && c.Argv[1] == "compute-policy" {
			out[c.Argv[3]] = strings.TrimPrefix(c.Argv[4], "--set-timeslice=")
		}
	}
	return out
}

func quits(cmds []sharing.Cmd) []sharing.Cmd {
	return slices.DeleteFunc(slices.Clone(cmds), func(c sharing.Cmd) bool { return c.Stdin != "quit\n" })
}

// While a record is quarantined its claim is unknown, and the startup
// reconcile destroys, stops and resets nothing that claim could hold.
func TestReconcileQuarantinedKeepsWhatALostRecordMayHold(t *testing.T) {
	tests := map[string]struct {
		tier   string
		policy *v1alpha1.TierPolicy
		claim  *resourceapi.ResourceClaim
		// kept checks that the lost claim's state survived.
		kept func(t *testing.T, r *restartEnv, gpu string, cmds []sharing.Cmd)
	}{
		"MIG instance": {
			tier:  v1alpha1.TierInference,
			claim: tierratest.MakeClaim("lost", "ns").UID("uid-lost").Request("mig", tiers.ClassMIG).Selector(migSelector).Obj(),
			kept: func(t *testing.T, r *restartEnv, gpu string, _ []sharing.Cmd) {
				assert.Len(t, r.gpu(t, gpu).MIG.Instances, 1, "the lost claim's MIG instance")
			},
		},
		"MPS daemon": {
			tier:   v1alpha1.TierDev,
			policy: tierratest.DefaultPolicySharing(v1alpha1.TierDev, v1alpha1.SharingMPS),
			claim:  tierratest.MakeClaim("lost", "ns").UID("uid-lost").Request("gpu", tiers.ClassName(v1alpha1.TierDev)).Obj(),
			kept: func(t *testing.T, r *restartEnv, gpu string, cmds []sharing.Cmd) {
				assert.Empty(t, quits(cmds), "no MPS daemon is stopped")
				daemons, err := r.mps.MPSDaemons(t.Context())
				require.NoError(t, err)
				assert.Equal(t, []string{gpu}, daemons)
			},
		},
		"ExclusiveProcess compute mode": {
			tier:  v1alpha1.TierInference,
			claim: tierratest.MakeClaim("lost", "ns").UID("uid-lost").Request("gpu", tiers.ClassGPU).Obj(),
			kept: func(t *testing.T, r *restartEnv, gpu string, _ []sharing.Cmd) {
				assert.Equal(t, inventory.ComputeModeExclusiveProcess, r.gpu(t, gpu).ComputeMode)
			},
		},
		"time-slice": {
			tier:  v1alpha1.TierDev,
			claim: tierratest.MakeClaim("lost", "ns").UID("uid-lost").Request("gpu", tiers.ClassName(v1alpha1.TierDev)).Config(timeSliceLong).Obj(),
			kept: func(t *testing.T, _ *restartEnv, _ string, cmds []sharing.Cmd) {
				assert.Empty(t, timeSlices(cmds), "no time-slice is reset")
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.policy == nil {
				tc.policy = v1alpha1.DefaultTierPolicy()
			}
			r := newRestartEnv(t, tc.tier, tc.policy)
			gpu := r.prepare(t, tc.claim)
			r.corrupt(t, "uid-lost")

			report, cmds := r.restart(t)

			require.Len(t, report.Quarantined, 1)
			assert.Empty(t, r.store.List())
			specs, err := r.cdi.List()
			require.NoError(t, err)
			assert.Equal(t, []string{"uid-lost"}, specs, "the lost claim's CDI spec is kept")
			tc.kept(t, r, gpu, cmds)
		})
	}
}

// MIG instances are destroyed at startup only as part of rolling back a
// record: its own instance, or the one with exactly its planned profile
// and placement. Any other instance (an admin's layout) is kept.
func TestReconcileMIGInstances(t *testing.T) {
	tests := map[string]struct {
		// crash leaves a claim whose instance was created but never
		// recorded; quarantine loses the record of a third claim.
		crash, quarantine bool
	}{
		"foreign instance on a managed GPU":                               {},
		"crash after create, before the MIG record":                       {crash: true},
		"crash after create, before the MIG record, a record quarantined": {crash: true, quarantine: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newRestartEnv(t, v1alpha1.TierInference, v1alpha1.DefaultTierPolicy())
			migClaim := func(name string) *resourceapi.ResourceClaim {
				return tierratest.MakeClaim(name, "ns").UID("uid-"+name).Request("mig", tiers.ClassMIG).Selector(migSelector).Obj()
			}
			gpu := r.prepare(t, migClaim("kept"))
			want := r.instances(t)
			if tc.quarantine {
				r.prepare(t, migClaim("lost"))
				r.corrupt(t, "uid-lost")
				want = r.instances(t)
			}
			if tc.crash {
				r.prepare(t, migClaim("crashed"))
				rec, ok := r.store.Get("uid-crashed")
				require.True(t, ok)
				require.NotNil(t, rec.Devices[0].PlannedMIG)
				rec.Phase, rec.Devices[0].MIG, rec.Devices[0].CDIDeviceIDs = checkpoint.PhasePrepareStarted, nil, nil
				require.NoError(t, r.store.Put(rec))
			}
			// An admin's instance of the same profile at another
			// placement of the same GPU.
			_, err := r.gpus.CreateMIGInstance(r.ctx, nvgpu.CreateMIGOptions{GPUUUID: gpu, Profile: "1g.18gb", Placement: inventory.MIGPlacement{Start: 6, Size: 1}})
			require.NoError(t, err)
			want = append(want, gpu+" 1g.18gb@6")
			slices.Sort(want)

			_, _ = r.restart(t)

			assert.Equal(t, want, r.instances(t), "the kept claim's, the lost claim's and the admin's instances")
			records := r.store.List()
			require.Len(t, records, 1)
			assert.Equal(t, "uid-kept", records[0].UID)
			specs, err := r.cdi.List()
			require.NoError(t, err)
			wantSpecs := []string{"uid-kept"}
			if tc.quarantine {
				wantSpecs = []string{"uid-kept", "uid-lost"}
			}
			assert.Equal(t, wantSpecs, specs)
		})
	}
}

// Without a quarantined record, what no record holds is reset: the compute
// mode of a whole GPU and the time-slice of a time-sliced GPU.
func TestReconcileResetsGPUsNoClaimHolds(t *testing.T) {
	t.Run("ExclusiveProcess compute mode", func(t *testing.T) {
		r := newRestartEnv(t, v1alpha1.TierInference, v1alpha1.DefaultTierPolicy())
		held := r.prepare(t, tierratest.MakeClaim("held", "ns").UID("uid-held").Request("gpu", tiers.ClassGPU).Obj())
		next := r.allocate(t, tierratest.MakeClaim("next", "ns").UID("uid-next").Request("gpu", tiers.ClassGPU).Obj())
		orphan := uuidOf(t, r.env, next)
		require.NoError(t, r.gpus.SetComputeMode(r.ctx, orphan, inventory.ComputeModeExclusiveProcess))

		_, _ = r.restart(t)

		assert.Equal(t, inventory.ComputeModeExclusiveProcess, r.gpu(t, held).ComputeMode, "the held GPU keeps its mode")
		assert.Equal(t, inventory.ComputeModeDefault, r.gpu(t, orphan).ComputeMode, "the orphan mode is reset")
		// The Preparer knows the reset: a claim on the GPU restores Default.
		_, err := r.prep.Prepare(r.ctx, next)
		require.NoError(t, err)
		require.NoError(t, r.prep.Unprepare(r.ctx, "uid-next"))
		require.NoError(t, r.prep.Unprepare(r.ctx, "uid-held"))
		r.assertNothingPrepared(t)
	})
	t.Run("time-slice", func(t *testing.T) {
		r := newRestartEnv(t, v1alpha1.TierDev, v1alpha1.DefaultTierPolicy())
		class := tiers.ClassName(v1alpha1.TierDev)
		held := r.prepare(t, tierratest.MakeClaim("held", "ns").UID("uid-held").Request("gpu", class).Config(timeSliceLong).Obj())

		_, cmds := r.restart(t)

		m, err := r.gpus.Machine(r.ctx)
		require.NoError(t, err)
		want := map[string]string{}
		for _, g := range m.GPUs {
			if g.UUID != held {
				want[g.UUID] = "0"
			}
		}
		assert.Equal(t, want, timeSlices(cmds), "every time-sliced GPU but the held one is reset")
	})
}
