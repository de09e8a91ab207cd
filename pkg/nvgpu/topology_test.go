//go:build cgo

package nvgpu

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

func TestNormalizeBusID(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"NVML eight-digit domain": {in: "00000000:18:00.0", want: "0000:18:00.0"},
		"upper case":              {in: "00000000:DB:00.0", want: "0000:db:00.0"},
		"non-zero domain":         {in: "00000001:1B:00.0", want: "0001:1b:00.0"},
		"already sysfs form":      {in: "0000:2a:00.0", want: "0000:2a:00.0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { assert.Equal(t, tc.want, normalizeBusID(tc.in)) })
	}
}

func TestPCIeRoot(t *testing.T) {
	root := t.TempDir()
	devices := filepath.Join(root, "bus", "pci", "devices")
	require.NoError(t, os.MkdirAll(devices, 0o755))
	target := filepath.Join(root, "devices", "pci0000:15", "0000:15:01.0", "0000:16:00.0", "0000:18:00.0")
	require.NoError(t, os.MkdirAll(target, 0o755))
	require.NoError(t, os.Symlink(target, filepath.Join(devices, "0000:18:00.0")))

	tests := map[string]struct {
		busID, want string
		wantSysfs   bool
	}{
		"behind a switch, from sysfs": {busID: "0000:18:00.0", want: "pci0000:15", wantSysfs: true},
		"absent from sysfs":           {busID: "0000:2a:00.0", want: "pci0000:2a"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := sysfs{root: root}.PCIeRoot(tc.busID)
			assert.Equal(t, tc.wantSysfs, ok)
			if !ok {
				got = derivePCIeRoot(tc.busID)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLocalNVLinkDomains(t *testing.T) {
	gpus := []inventory.GPU{
		{UUID: "GPU-a", PCIBusID: "0000:01:00.0"},
		{UUID: "GPU-b", PCIBusID: "0000:02:00.0"},
		{UUID: "GPU-c", PCIBusID: "0000:03:00.0"},
		{UUID: "GPU-d", PCIBusID: "0000:04:00.0"},
		{UUID: "GPU-e", PCIBusID: "0000:05:00.0"},
		{UUID: "GPU-f", PCIBusID: "0000:06:00.0", NVLinkDomain: "fabric.1"},
	}
	links := map[string][]string{
		"0000:01:00.0": {"0000:02:00.0"},                 // a-b direct
		"0000:02:00.0": {"0000:01:00.0"},                 // b-a direct
		"0000:03:00.0": {"0000:e0:00.0"},                 // c via switch
		"0000:04:00.0": {"0000:e0:00.0", "0000:e1:00.0"}, // d via the same switch
		"0000:06:00.0": {"0000:e1:00.0"},                 // f has a fabric domain already
	}
	assignLocalNVLinkDomains(gpus, links)
	assert.Equal(t, gpus[0].NVLinkDomain, gpus[1].NVLinkDomain)
	assert.Equal(t, gpus[2].NVLinkDomain, gpus[3].NVLinkDomain)
	assert.NotEqual(t, gpus[0].NVLinkDomain, gpus[2].NVLinkDomain)
	assert.True(t, strings.HasPrefix(gpus[0].NVLinkDomain, "local-"))
	assert.Empty(t, gpus[4].NVLinkDomain, "no links, no domain")
	assert.Equal(t, "fabric.1", gpus[5].NVLinkDomain, "fabric domain wins")
}

func TestProfileName(t *testing.T) {
	tests := map[string]struct {
		index        int
		compute, mem int
		memoryMiB    uint64
		want         string
	}{
		"H200 1g":      {index: nvml.GPU_INSTANCE_PROFILE_1_SLICE, compute: 1, mem: 1, memoryMiB: 143771, want: "1g.18gb"},
		"H200 1g REV1": {index: nvml.GPU_INSTANCE_PROFILE_1_SLICE_REV1, compute: 1, mem: 1, memoryMiB: 143771, want: "1g.18gb+me"},
		"H200 1g REV2": {index: nvml.GPU_INSTANCE_PROFILE_1_SLICE_REV2, compute: 1, mem: 2, memoryMiB: 143771, want: "1g.35gb"},
		"H200 3g":      {index: nvml.GPU_INSTANCE_PROFILE_3_SLICE, compute: 3, mem: 4, memoryMiB: 143771, want: "3g.71gb"},
		"H100 7g":      {index: nvml.GPU_INSTANCE_PROFILE_7_SLICE, compute: 7, mem: 8, memoryMiB: 81559, want: "7g.80gb"},
		"B200 1g":      {index: nvml.GPU_INSTANCE_PROFILE_1_SLICE, compute: 1, mem: 1, memoryMiB: 183359, want: "1g.23gb"},
		"B200 1g -me":  {index: nvml.GPU_INSTANCE_PROFILE_1_SLICE_NO_ME, compute: 1, mem: 1, memoryMiB: 183359, want: "1g.23gb-me"},
		"A100 40GB 1g": {index: nvml.GPU_INSTANCE_PROFILE_1_SLICE, compute: 1, mem: 1, memoryMiB: 40536, want: "1g.5gb"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := inventory.MIGProfile{ComputeSlices: tc.compute, MemorySlices: tc.mem}
			assert.Equal(t, tc.want, profileName(tc.index, p, 8, tc.memoryMiB*mib))
		})
	}
}

func TestInitWithoutLibrary(t *testing.T) {
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	_, err := newGPUs(lib, fakeHost{}, Options{})
	require.ErrorIs(t, err, ErrLibraryNotFound)
	msg := err.Error()
	assert.Contains(t, msg, "NVML could not be loaded")
	assert.Contains(t, msg, "no NVIDIA driver appears to be installed")
	assert.Contains(t, msg, "--machine fake:dgxh200")
	for _, name := range FakeMachines() {
		assert.Contains(t, msg, name)
	}
	assert.NotContains(t, msg, "\n")
}

func TestReturnErrorSentinels(t *testing.T) {
	tests := map[string]struct {
		ret          nvml.Return
		notFound     bool
		notSupported bool
	}{
		"not found":          {ret: nvml.ERROR_NOT_FOUND, notFound: true},
		"not supported":      {ret: nvml.ERROR_NOT_SUPPORTED, notSupported: true},
		"function not found": {ret: nvml.ERROR_FUNCTION_NOT_FOUND, notSupported: true},
		"in use":             {ret: nvml.ERROR_IN_USE},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := nvmlError("op", tc.ret)
			assert.Equal(t, tc.notFound, errors.Is(err, ErrNotFound))
			assert.Equal(t, tc.notSupported, errors.Is(err, ErrNotSupported))
			assert.ErrorIs(t, err, tc.ret, "the NVML code stays reachable")
		})
	}
}
