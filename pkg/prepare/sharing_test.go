package prepare_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/sharing"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

func TestPrepareSoftSharing(t *testing.T) {
	tests := map[string]struct {
		policy        *v1alpha1.TierPolicy
		config        string
		wantStart     []string
		setupCmds     int // commands run by the GPU's first claim
		wantStop      []string
		wantSpecParts []string
	}{
		"MPS": {
			policy:        tierratest.DefaultPolicySharing(v1alpha1.TierDev, v1alpha1.SharingMPS),
			config:        `{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"MPS","mps":{"defaultActiveThreadPercentage":25}}}`,
			wantStart:     []string{"nvidia-cuda-mps-control", "-d"},
			setupCmds:     2, // -d, then the limit on the control pipe
			wantStop:      []string{"nvidia-cuda-mps-control"},
			wantSpecParts: []string{"CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=25"},
		},
		"time-slicing, long": {
			policy:    v1alpha1.DefaultTierPolicy(),
			config:    `{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"TimeSlicing","timeSlicing":{"interval":"Long"}}}`,
			wantStart: []string{"nvidia-smi", "compute-policy", "-i", "", "--set-timeslice=3"},
			setupCmds: 1,
			wantStop:  []string{"nvidia-smi", "compute-policy", "-i", "", "--set-timeslice=0"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			runner := &sharing.FakeRunner{}
			m, err := sharing.New(sharing.Options{Runner: runner, MPSDir: t.TempDir()})
			require.NoError(t, err)
			e := newEnvPolicy(t, v1alpha1.TierDev, tc.policy, nil, func(o *prepare.Options) { o.Sharer = m })
			class := tiers.ClassName(v1alpha1.TierDev)
			first := e.allocate(t, tierratest.MakeClaim("a", "ns").UID("uid-a").Request("gpu", class).Config(tc.config).Obj())
			second := e.allocate(t, tierratest.MakeClaim("b", "ns").UID("uid-b").Request("gpu", class).Config(tc.config).Obj())
			gpu := uuidOf(t, e, first)
			fillGPU(tc.wantStart, gpu)
			fillGPU(tc.wantStop, gpu)

			_, err = e.prep.Prepare(e.ctx, first)
			require.NoError(t, err)
			_, err = e.prep.Prepare(e.ctx, second)
			require.NoError(t, err)
			require.Len(t, runner.Commands(), tc.setupCmds, "set up once per GPU")
			assert.Equal(t, tc.wantStart, runner.Commands()[0].Argv)
			for _, uid := range []string{"uid-a", "uid-b"} {
				spec, err := os.ReadFile(filepath.Join(e.cdi.Dir(), "gpu.tierra.dev-claim_"+uid+".json"))
				require.NoError(t, err)
				for _, s := range tc.wantSpecParts {
					assert.Contains(t, string(spec), s)
				}
			}

			require.NoError(t, e.prep.Unprepare(e.ctx, "uid-a"))
			require.Len(t, runner.Commands(), tc.setupCmds, "the second claim still shares the GPU")
			require.NoError(t, e.prep.Unprepare(e.ctx, "uid-b"))
			require.Len(t, runner.Commands(), tc.setupCmds+1)
			assert.Equal(t, tc.wantStop, runner.Commands()[tc.setupCmds].Argv, "torn down with the last claim")
			e.assertNothingPrepared(t)
		})
	}
}

// fillGPU puts the GPU's UUID into the empty slot of an nvidia-smi argv.
func fillGPU(argv []string, uuid string) {
	for i, a := range argv {
		if a == "" {
			argv[i] = uuid
		}
	}
}

// A GPU's MPS daemon enforces one set of limits for all its clients: a
// claim of other limits is refused on that GPU (and leaves nothing behind)
// instead of silently getting the first claim's.
func TestPrepareMPSRefusesOtherLimitsOnOneGPU(t *testing.T) {
	runner := &sharing.FakeRunner{}
	m, err := sharing.New(sharing.Options{Runner: runner, MPSDir: t.TempDir()})
	require.NoError(t, err)
	e := newEnvPolicy(t, v1alpha1.TierDev, tierratest.DefaultPolicySharing(v1alpha1.TierDev, v1alpha1.SharingMPS), nil, func(o *prepare.Options) { o.Sharer = m })
	class := tiers.ClassName(v1alpha1.TierDev)
	mps := func(pct int) string {
		return fmt.Sprintf(`{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"MPS","mps":{"defaultActiveThreadPercentage":%d}}}`, pct)
	}
	first := e.allocate(t, tierratest.MakeClaim("a", "ns").UID("uid-a").Request("gpu", class).Config(mps(50)).Obj())
	second := e.allocate(t, tierratest.MakeClaim("b", "ns").UID("uid-b").Request("gpu", class).Config(mps(20)).Obj())
	require.Equal(t, uuidOf(t, e, first), uuidOf(t, e, second), "both on one GPU")

	_, err = e.prep.Prepare(e.ctx, first)
	require.NoError(t, err)
	_, err = e.prep.Prepare(e.ctx, second)
	require.ErrorIs(t, err, sharing.ErrMPSLimitsDiffer)
	assert.ErrorContains(t, err, "enforces defaultActiveThreadPercentage=50 for every client and this claim asks for defaultActiveThreadPercentage=20")
	assert.NoFileExists(t, filepath.Join(e.cdi.Dir(), "gpu.tierra.dev-claim_uid-b.json"))
	require.NoError(t, e.prep.Unprepare(e.ctx, "uid-a"))
	e.assertNothingPrepared(t)
}
