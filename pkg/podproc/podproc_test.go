package podproc_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/podproc"
)

const uid = "5f0c3b1e-8d2a-4c7b-9e61-0a1b2c3d4e5f"

var underscored = strings.ReplaceAll(uid, "-", "_")

// fakeProc writes a /proc tree with one cgroup file per PID.
func fakeProc(t *testing.T, cgroups map[uint32]string) string {
	t.Helper()
	root := t.TempDir()
	for pid, content := range cgroups {
		dir := filepath.Join(root, strconv.FormatUint(uint64(pid), 10))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup"), []byte(content), 0o644))
	}
	return root
}

func TestPodUID(t *testing.T) {
	tests := map[string]struct {
		cgroup  string
		want    string
		wantErr error
		wantMsg string
	}{
		"cgroup v1 cgroupfs, burstable": {
			cgroup: "12:memory:/kubepods/burstable/pod" + uid + "/0123abcd\n" +
				"11:devices:/kubepods/burstable/pod" + uid + "/0123abcd\n1:name=systemd:/kubepods/burstable/pod" + uid + "/0123abcd\n",
			want: uid,
		},
		"cgroup v1 cgroupfs, guaranteed": {
			cgroup: "4:cpu,cpuacct:/kubepods/pod" + uid + "/c0ffee\n", want: uid,
		},
		"cgroup v1 systemd": {
			cgroup: "9:memory:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + underscored +
				".slice/docker-0123.scope\n", want: uid,
		},
		"cgroup v2 systemd, burstable": {
			cgroup: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + underscored +
				".slice/cri-containerd-4c1d2e.scope\n", want: uid,
		},
		"cgroup v2 systemd, guaranteed": {
			cgroup: "0::/kubepods.slice/kubepods-pod" + underscored + ".slice/cri-containerd-4c1d2e.scope\n", want: uid,
		},
		"cgroup v2 cgroupfs": {
			cgroup: "0::/kubepods/besteffort/pod" + uid + "/9f8e7d\n", want: uid,
		},
		"cgroup v2 under kind's kubelet slice": {
			cgroup: "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" +
				underscored + ".slice/cri-containerd-aa.scope\n", want: uid,
		},
		"cgroup v2 seen from another cgroup namespace": {
			cgroup: "0::/../../kubepods-burstable-pod" + underscored + ".slice/cri-containerd-aa.scope\n", want: uid,
		},
		"hybrid: unified root, pod in v1 hierarchies": {
			cgroup: "0::/\n7:memory:/kubepods/burstable/pod" + uid + "/abc\n", want: uid,
		},
		"upper case is normalised": {
			cgroup: "0::/kubepods/pod" + strings.ToUpper(uid) + "/abc\n", want: uid,
		},
		"pod sandbox (pause) cgroup": {
			cgroup: "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + underscored + ".slice\n", want: uid,
		},
		"host daemon": {
			cgroup: "0::/system.slice/nvidia-persistenced.service\n", wantErr: podproc.ErrNotInPod,
		},
		"user session": {
			cgroup: "0::/user.slice/user-1000.slice/session-3.scope\n", wantErr: podproc.ErrNotInPod,
		},
		"not a UID": {
			cgroup: "0::/kubepods/burstable/podnotauid/abc\n", wantErr: podproc.ErrNotInPod,
		},
		"two pods": {
			cgroup:  "12:memory:/kubepods/pod" + uid + "/a\n11:cpu:/kubepods/pod11111111-2222-3333-4444-555555555555/b\n",
			wantMsg: "two pods",
		},
		"empty file": {cgroup: "", wantErr: podproc.ErrNotInPod},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := podproc.Mapper{ProcRoot: fakeProc(t, map[uint32]string{4242: tc.cgroup})}
			got, err := m.PodUID(4242)
			switch {
			case tc.wantErr != nil:
				assert.ErrorIs(t, err, tc.wantErr)
				assert.ErrorContains(t, err, "process 4242")
			case tc.wantMsg != "":
				assert.ErrorContains(t, err, tc.wantMsg)
			default:
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
			}
		})
	}
}

func TestPodUIDOfExitedProcess(t *testing.T) {
	m := podproc.Mapper{ProcRoot: fakeProc(t, nil)}
	_, err := m.PodUID(7)
	assert.ErrorIs(t, err, podproc.ErrNoProcess)
	assert.NotErrorIs(t, err, podproc.ErrNotInPod)
}

// The default root is the real /proc: this test process is in no pod (or,
// under a kubelet, in one); either way it answers without error types
// other than ErrNotInPod.
func TestPodUIDOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/cgroup"); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	uid, err := podproc.Mapper{}.PodUID(uint32(os.Getpid()))
	if err != nil {
		assert.ErrorIs(t, err, podproc.ErrNotInPod)
		return
	}
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, uid)
}

// A simulator's fake process is found in its pod, and moves with it.
func TestWriteFakeCgroup(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, podproc.WriteFakeCgroup(root, 31, uid))
	m := podproc.Mapper{ProcRoot: root}
	got, err := m.PodUID(31)
	require.NoError(t, err)
	assert.Equal(t, uid, got)
	const other = "11111111-2222-3333-4444-555555555555"
	require.NoError(t, podproc.WriteFakeCgroup(root, 31, other))
	got, err = m.PodUID(31)
	require.NoError(t, err)
	assert.Equal(t, other, got)
}
