package sharing_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/sharing"
)

func TestShare(t *testing.T) {
	tests := map[string]struct {
		sharing   v1alpha1.GpuSharing
		first     bool
		wantArgv  [][]string
		wantStdin []string
		wantEnv   []string
		wantMount bool
	}{
		"time-slicing default interval": {
			sharing: v1alpha1.GpuSharing{Strategy: v1alpha1.SharingTimeSlicing, TimeSlicing: &v1alpha1.TimeSlicingConfig{Interval: v1alpha1.TimeSliceDefault}},
			first:   true,
		},
		"time-slicing long interval": {
			sharing:  v1alpha1.GpuSharing{Strategy: v1alpha1.SharingTimeSlicing, TimeSlicing: &v1alpha1.TimeSlicingConfig{Interval: v1alpha1.TimeSliceLong}},
			first:    true,
			wantArgv: [][]string{{"nvidia-smi", "compute-policy", "-i", "GPU-1", "--set-timeslice=3"}},
		},
		"time-slicing second claim": {
			sharing: v1alpha1.GpuSharing{Strategy: v1alpha1.SharingTimeSlicing, TimeSlicing: &v1alpha1.TimeSlicingConfig{Interval: v1alpha1.TimeSliceLong}},
		},
		"MPS first claim starts the daemon": {
			sharing:   v1alpha1.GpuSharing{Strategy: v1alpha1.SharingMPS, MPS: &v1alpha1.MPSConfig{DefaultActiveThreadPercentage: ptr.To[int32](50)}},
			first:     true,
			wantArgv:  [][]string{{"nvidia-cuda-mps-control", "-d"}, {"nvidia-cuda-mps-control"}},
			wantStdin: []string{"", "set_default_active_thread_percentage 50\n"},
			wantEnv:   []string{"CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=50"},
			wantMount: true,
		},
		"MPS second claim joins it": {
			sharing:   v1alpha1.GpuSharing{Strategy: v1alpha1.SharingMPS},
			wantEnv:   []string{"CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps"},
			wantMount: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			runner := &sharing.FakeRunner{}
			m, err := sharing.New(sharing.Options{Runner: runner, MPSDir: t.TempDir()})
			require.NoError(t, err)
			edits, err := m.Share(ctx, "GPU-1", &tc.sharing, tc.first)
			require.NoError(t, err)
			var argv [][]string
			var stdin []string
			for _, c := range runner.Commands() {
				argv, stdin = append(argv, c.Argv), append(stdin, c.Stdin)
			}
			assert.Equal(t, tc.wantArgv, argv)
			if tc.wantStdin != nil {
				assert.Equal(t, tc.wantStdin, stdin, "the daemon gets the limits on its control pipe")
			}
			assert.Equal(t, tc.wantEnv, edits.Env)
			if tc.wantMount {
				var dst []string
				for _, mnt := range edits.Mounts {
					dst = append(dst, mnt.ContainerPath)
				}
				assert.Equal(t, []string{"/tmp/nvidia-mps", "/dev/shm"}, dst, "clients share the daemon's pipes and shared memory")
			} else {
				assert.Empty(t, edits.Mounts)
			}
		})
	}
}

func TestUnshare(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	runner := &sharing.FakeRunner{}
	m, err := sharing.New(sharing.Options{Runner: runner, MPSDir: "/run/tierra/mps"})
	require.NoError(t, err)
	require.NoError(t, m.Unshare(ctx, "GPU-1", v1alpha1.SharingMPS, false))
	assert.Empty(t, runner.Commands(), "other claims still use the daemon")
	require.NoError(t, m.Unshare(ctx, "GPU-1", v1alpha1.SharingMPS, true))
	require.NoError(t, m.Unshare(ctx, "GPU-1", v1alpha1.SharingTimeSlicing, true))
	cmds := runner.Commands()
	require.Len(t, cmds, 2)
	assert.Equal(t, []string{"nvidia-cuda-mps-control"}, cmds[0].Argv)
	assert.Equal(t, "quit\n", cmds[0].Stdin)
	assert.Contains(t, cmds[0].Env, "CUDA_MPS_PIPE_DIRECTORY=/run/tierra/mps/GPU-1/pipe")
	assert.Equal(t, []string{"nvidia-smi", "compute-policy", "-i", "GPU-1", "--set-timeslice=0"}, cmds[1].Argv)
}

func TestExecRunner(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	require.NoError(t, sharing.ExecRunner{}.Run(ctx, sharing.Cmd{Argv: []string{"sh", "-c", `test "$X" = 1 && read l && test "$l" = quit`}, Env: []string{"X=1"}, Stdin: "quit\n"}))
	err := sharing.ExecRunner{}.Run(ctx, sharing.Cmd{Argv: []string{"sh", "-c", "echo boom; exit 3"}})
	assert.ErrorContains(t, err, "boom")
}

// The commands can be replaced (a stand-in in the crash test, or a
// binary outside PATH); both start/stop and the time-slice use them.
func TestCommandsFromOptions(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	runner := &sharing.FakeRunner{}
	m, err := sharing.New(sharing.Options{Runner: runner, MPSDir: t.TempDir(),
		MPSControlCommand: "/opt/bin/mps-control", NvidiaSMICommand: "/opt/bin/smi"})
	require.NoError(t, err)
	_, err = m.Share(ctx, "GPU-1", &v1alpha1.GpuSharing{Strategy: v1alpha1.SharingMPS}, true)
	require.NoError(t, err)
	require.NoError(t, m.Unshare(ctx, "GPU-1", v1alpha1.SharingMPS, true))
	require.NoError(t, m.Unshare(ctx, "GPU-1", v1alpha1.SharingTimeSlicing, true))
	var argv0 []string
	for _, c := range runner.Commands() {
		argv0 = append(argv0, c.Argv[0])
	}
	assert.Equal(t, []string{"/opt/bin/mps-control", "/opt/bin/mps-control", "/opt/bin/smi"}, argv0)
}

// A GPU's MPS directory exists exactly while its daemon runs: made when
// the daemon starts, gone when it stops or fails to start. MPSDaemons
// lists those GPUs, which is how startup finds daemons no claim holds.
func TestMPSDaemonsFollowTheDirectories(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	runner := &sharing.FakeRunner{}
	m, err := sharing.New(sharing.Options{Runner: runner, MPSDir: t.TempDir()})
	require.NoError(t, err)
	mps := &v1alpha1.GpuSharing{Strategy: v1alpha1.SharingMPS}
	for _, gpu := range []string{"GPU-1", "GPU-2"} {
		_, err = m.Share(ctx, gpu, mps, true)
		require.NoError(t, err)
	}
	daemons, err := m.MPSDaemons(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"GPU-1", "GPU-2"}, daemons)

	require.NoError(t, m.Unshare(ctx, "GPU-1", v1alpha1.SharingMPS, true))
	require.NoError(t, m.StopMPS(ctx, "GPU-2"))
	daemons, err = m.MPSDaemons(ctx)
	require.NoError(t, err)
	assert.Empty(t, daemons)

	runner.Err = errors.New("no such GPU")
	_, err = m.Share(ctx, "GPU-3", mps, true)
	require.ErrorContains(t, err, "start MPS daemon of GPU-3")
	daemons, err = m.MPSDaemons(ctx)
	require.NoError(t, err)
	assert.Empty(t, daemons, "a daemon that never started leaves no directory")
}
