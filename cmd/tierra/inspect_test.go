//go:build cgo

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

func runInspectCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newInspectCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestInspectFakeDGXH200JSON(t *testing.T) {
	out, err := runInspectCommand(t, "--machine", "fake:dgxh200", "-o", "json")
	require.NoError(t, err)
	var m inventory.Machine
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&m))

	require.Len(t, m.GPUs, 8)
	wantPlacements := map[string]string{
		"1g.18gb": "{0,1,2,3,4,5,6}:1", "1g.18gb+me": "{0,1,2,3,4,5,6}:1", "1g.35gb": "{0,2,4,6}:2",
		"2g.35gb": "{0,2,4}:2", "3g.71gb": "{0,4}:4", "4g.71gb": "{0}:4", "7g.141gb": "{0}:8",
	}
	for i, g := range m.GPUs {
		assert.Equal(t, "NVIDIA H200 141GB HBM3e", g.ProductName)
		assert.Equal(t, uint64(144384)<<20, g.MemoryBytes, "H200 memory")
		assert.Equal(t, i/4, g.NUMANode, "GPU %d NUMA node", i)
		assert.Regexp(t, `^pci0000:[0-9a-f]{2}$`, g.PCIeRoot)
		assert.NotEmpty(t, g.NVLinkDomain)
		assert.Equal(t, m.GPUs[0].NVLinkDomain, g.NVLinkDomain, "one NVLink domain on a DGX")
		require.NotNil(t, g.MIG)
		got := map[string]string{}
		for _, p := range g.MIG.Profiles {
			got[p.Name] = inventory.FormatPlacements(p.Placements)
		}
		assert.Equal(t, wantPlacements, got, "GPU %d", i)
	}
}

func TestInspectFormats(t *testing.T) {
	tests := map[string]struct {
		args    []string
		check   func(t *testing.T, out string)
		wantErr []string
	}{
		"yaml": {
			args: []string{"--machine", "fake:mixed", "-o", "yaml"},
			check: func(t *testing.T, out string) {
				var m inventory.Machine
				require.NoError(t, yaml.UnmarshalStrict([]byte(out), &m))
				require.Len(t, m.GPUs, 8)
				assert.Len(t, m.GPUs[0].MIG.Instances, 2)
			},
		},
		"table": {
			args: []string{"--machine", "fake:dgxh200"},
			check: func(t *testing.T, out string) {
				for _, s := range []string{"NVIDIA H200 141GB HBM3e", "pci0000:15", "141.0 GiB",
					"3g.71gb", "{0,4}:4", "{0,2,4,6}:2", "NVLINK DOMAIN"} {
					assert.Contains(t, out, s)
				}
				assert.Equal(t, 8, strings.Count(out, "GPU-"), "one row per GPU")
			},
		},
		"non-MIG table": {
			args: []string{"--machine", "fake:l4x4", "-o", "table"},
			check: func(t *testing.T, out string) {
				assert.Contains(t, out, "NVIDIA L4")
				assert.NotContains(t, out, "MIG profiles")
			},
		},
		"unknown output": {
			args:    []string{"--machine", "fake:dgxh200", "-o", "xml"},
			wantErr: []string{"--output", `"xml"`, "table, json, yaml"},
		},
		"unknown fake": {
			args:    []string{"--machine", "fake:dgx1"},
			wantErr: []string{"--machine", `"fake:dgx1"`, "dgxa100, dgxb200, dgxh100, dgxh200, l4x4, mixed"},
		},
		"machine without fake: prefix": {
			args:    []string{"--machine", "dgxh200"},
			wantErr: []string{"--machine", "fake:<name>"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := runInspectCommand(t, tc.args...)
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, s := range tc.wantErr {
					assert.ErrorContains(t, err, s)
				}
				return
			}
			require.NoError(t, err)
			tc.check(t, out)
		})
	}
}

func TestInspectHelpListsFakes(t *testing.T) {
	usage := newInspectCommand().UsageString()
	for _, name := range nvgpu.FakeMachines() {
		assert.Contains(t, usage, name)
	}
	assert.Contains(t, usage, "--output")
}

// withoutNVML skips where libnvidia-ml loads: there the real path works.
func withoutNVML(t *testing.T) {
	t.Helper()
	g, err := nvgpu.New(context.Background(), nvgpu.Options{})
	if err == nil {
		_ = g.Close()
		t.Skip("NVML is installed here; the no-driver path cannot be exercised")
	}
}

func TestInspectWithoutNVML(t *testing.T) {
	withoutNVML(t)
	_, err := runInspectCommand(t)
	require.ErrorIs(t, err, nvgpu.ErrLibraryNotFound)
	assert.ErrorContains(t, err, "no NVIDIA driver appears to be installed")
	assert.ErrorContains(t, err, "--machine fake:dgxh200")
}

// TestInspectWithoutNVMLExits runs the real binary's main: exit status 1 and
// a single "tierra: ..." line on stderr, no stack trace.
func TestInspectWithoutNVMLExits(t *testing.T) {
	if os.Getenv("TIERRA_TEST_RUN_MAIN") == "1" {
		os.Args = []string{"tierra", "inspect"}
		main()
		return
	}
	withoutNVML(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestInspectWithoutNVMLExits$")
	cmd.Env = append(os.Environ(), "TIERRA_TEST_RUN_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "exits non-zero: %v", err)
	assert.Equal(t, 1, exit.ExitCode())
	msg := strings.TrimSpace(stderr.String())
	assert.Equal(t, 0, strings.Count(msg, "\n"), "one line: %q", msg)
	assert.True(t, strings.HasPrefix(msg, "tierra: NVML could not be loaded"), msg)
	assert.NotContains(t, msg, "goroutine")
	assert.Empty(t, stdout.String())
}
