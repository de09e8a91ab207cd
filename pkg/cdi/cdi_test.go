package cdi

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	oci "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
)

const uid = "7e4d3c2b-1a09-4f8e-9d7c-6b5a49382716"

func gpuDevices() []Device {
	return []Device{
		{
			Name:        "gpu-0",
			DeviceNodes: []string{"/dev/null", "/dev/zero"},
			Env:         []string{"NVIDIA_VISIBLE_DEVICES=GPU-1234", "EMPTY="},
		},
		{
			Name:        "gpu-1-mig-1g.18gb-2",
			DeviceNodes: []string{"/dev/null"},
			Env:         []string{"CUDA_MPS_PIPE_DIRECTORY=/run/tierra/mps/x"},
			Mounts:      []Mount{{HostPath: "/run/tierra/mps/x", ContainerPath: "/run/tierra/mps/x", ReadOnly: true}},
		},
	}
}

func newWriter(t testing.TB) *Writer {
	t.Helper()
	w, err := New(Options{Dir: filepath.Join(t.TempDir(), "cdi")})
	require.NoError(t, err)
	return w
}

func TestWrite(t *testing.T) {
	w := newWriter(t)
	ids, err := w.Write(uid, gpuDevices())
	require.NoError(t, err)
	assert.Equal(t, []string{
		"gpu.tierra.dev/claim=" + uid + "-gpu-0",
		"gpu.tierra.dev/claim=" + uid + "-gpu-1-mig-1g.18gb-2",
	}, ids)

	path := filepath.Join(w.Dir(), "gpu.tierra.dev-claim_"+uid+".json")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	// The library reads and validates it...
	spec, err := cdiapi.ReadSpec(path, 0)
	require.NoError(t, err)
	assert.Equal(t, Kind, spec.Kind)
	assert.Equal(t, "0.5.0", spec.Version, "the lowest version that allows a device name starting with a digit")
	require.Len(t, spec.Devices, 2)
	assert.Equal(t, ids[1], spec.GetDevice(uid+"-gpu-1-mig-1g.18gb-2").GetQualifiedName())

	// ...and a runtime using it injects what we asked for.
	cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(w.Dir()), cdiapi.WithAutoRefresh(false))
	require.NoError(t, err)
	ociSpec := &oci.Spec{Process: &oci.Process{}, Linux: &oci.Linux{}}
	unresolved, err := cache.InjectDevices(ociSpec, ids...)
	require.NoError(t, err)
	assert.Empty(t, unresolved)
	assert.Contains(t, ociSpec.Process.Env, "NVIDIA_VISIBLE_DEVICES=GPU-1234")
	require.Len(t, ociSpec.Mounts, 1)
	assert.Contains(t, ociSpec.Mounts[0].Options, "ro")
	assert.Len(t, ociSpec.Linux.Devices, 2, "/dev/null once, /dev/zero")
}

func TestWriteReplaces(t *testing.T) {
	w := newWriter(t)
	_, err := w.Write(uid, gpuDevices())
	require.NoError(t, err)
	ids, err := w.Write(uid, gpuDevices()[:1])
	require.NoError(t, err)
	assert.Len(t, ids, 1)
	spec, err := cdiapi.ReadSpec(w.path(uid), 0)
	require.NoError(t, err)
	assert.Len(t, spec.Devices, 1)
	assertNoTempFiles(t, w.Dir())
}

func TestDeleteAndList(t *testing.T) {
	w := newWriter(t)
	uids, err := w.List()
	require.NoError(t, err)
	assert.Empty(t, uids)
	for _, u := range []string{"uid-b", "uid-a"} {
		_, err := w.Write(u, gpuDevices())
		require.NoError(t, err)
	}
	// Files that are not ours are left alone and not listed.
	require.NoError(t, os.WriteFile(filepath.Join(w.Dir(), "nvidia.com-gpu.yaml"), []byte("x"), 0o644))
	spec, err := cdiapi.ReadSpec(w.path("uid-a"), 0)
	require.NoError(t, err)
	assert.Equal(t, "0.3.0", spec.Version, "names starting with a letter need no more than 0.3.0")
	uids, err = w.List()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"uid-a", "uid-b"}, uids)

	require.NoError(t, w.Delete("uid-a"))
	require.NoError(t, w.Delete("uid-a"), "absent is not an error")
	uids, err = w.List()
	require.NoError(t, err)
	assert.Equal(t, []string{"uid-b"}, uids)
	assert.FileExists(t, filepath.Join(w.Dir(), "nvidia.com-gpu.yaml"))
}

func TestNewRemovesLeftoverTempFiles(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, tempPrefix+uid+"-123")
	require.NoError(t, os.WriteFile(tmp, []byte("{"), 0o644))
	_, err := New(Options{Dir: dir})
	require.NoError(t, err)
	assert.NoFileExists(t, tmp)
}

func TestWriteRejectsInvalidInput(t *testing.T) {
	tests := map[string]struct {
		uid       string
		mutate    func([]Device) []Device
		wantField string
	}{
		"empty claim uid":     {uid: "", wantField: "claimUID"},
		"claim uid with path": {uid: "../x", wantField: "claimUID"},
		"no devices":          {mutate: func([]Device) []Device { return nil }, wantField: "devices"},
		"empty device name": {
			mutate:    func(d []Device) []Device { d[1].Name = ""; return d },
			wantField: "devices[1].name",
		},
		"bad device name": {
			mutate:    func(d []Device) []Device { d[0].Name = "gpu/0"; return d },
			wantField: "devices[0].name",
		},
		"duplicate device name": {
			mutate:    func(d []Device) []Device { d[1].Name = d[0].Name; return d },
			wantField: "devices[1].name",
		},
		"env without =": {
			mutate:    func(d []Device) []Device { d[0].Env[1] = "NOVALUE"; return d },
			wantField: "devices[0].env[1]",
		},
		"env without key": {
			mutate:    func(d []Device) []Device { d[0].Env[0] = "=x"; return d },
			wantField: "devices[0].env[0]",
		},
		"relative device node": {
			mutate:    func(d []Device) []Device { d[0].DeviceNodes[1] = "dev/nvidia0"; return d },
			wantField: "devices[0].deviceNodes[1]",
		},
		"unclean device node": {
			mutate:    func(d []Device) []Device { d[0].DeviceNodes[0] = "/dev/../etc/x"; return d },
			wantField: "devices[0].deviceNodes[0]",
		},
		"relative mount container path": {
			mutate:    func(d []Device) []Device { d[1].Mounts[0].ContainerPath = "mps"; return d },
			wantField: "devices[1].mounts[0].containerPath",
		},
		"empty mount host path": {
			mutate:    func(d []Device) []Device { d[1].Mounts[0].HostPath = ""; return d },
			wantField: "devices[1].mounts[0].hostPath",
		},
		"device with nothing to inject": {
			mutate:    func(d []Device) []Device { d[0] = Device{Name: "gpu-0"}; return d },
			wantField: "devices[0]",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWriter(t)
			claimUID := uid
			if tc.mutate == nil {
				claimUID = tc.uid
			}
			devs := gpuDevices()
			if tc.mutate != nil {
				devs = tc.mutate(devs)
			}
			ids, err := w.Write(claimUID, devs)
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.wantField)
			assert.Nil(t, ids)
			entries, err := os.ReadDir(w.Dir())
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing written")
		})
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), tempPrefix)
	}
}

// BenchmarkWrite shows that writing a claim's spec does not depend on how
// many other specs the directory holds.
func BenchmarkWrite(b *testing.B) {
	for _, present := range []int{0, 1000} {
		b.Run(fmt.Sprintf("present=%d", present), func(b *testing.B) {
			w := newWriter(b)
			for i := range present {
				_, err := w.Write(fmt.Sprintf("claim-%04d", i), gpuDevices())
				require.NoError(b, err)
			}
			devs := gpuDevices()
			for b.Loop() {
				if _, err := w.Write(uid, devs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestConcurrentWrites(t *testing.T) {
	w := newWriter(t)
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 10 {
				_, err := w.Write(fmt.Sprintf("claim-%d", i), gpuDevices())
				assert.NoError(t, err)
				_, err = w.Write("claim-shared", gpuDevices())
				assert.NoError(t, err)
			}
		}()
	}
	for range 8 {
		<-done
	}
	uids, err := w.List()
	require.NoError(t, err)
	assert.Len(t, uids, 9)
	_, err = cdiapi.ReadSpec(w.path("claim-shared"), 0)
	require.NoError(t, err, "concurrent writers of one claim leave a whole spec")
	assertNoTempFiles(t, w.Dir())
}
