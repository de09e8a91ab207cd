package nvgpu

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

func TestProcCaps(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o444))
	}
	write("gpu3/mig/gi2/access", "DeviceFileMinor: 237\nDeviceFileMode: 292\nDeviceFileModify: 1\n")
	write("gpu3/mig/gi2/ci0/access", "DeviceFileMinor: 238\nDeviceFileMode: 292\n")
	write("gpu3/mig/gi5/access", "DeviceFileMode: 292\n")

	tests := map[string]struct {
		gi, ci  int
		want    []string
		wantErr string
		wantIs  error
	}{
		"GPU and compute instance": {gi: 2, ci: 0, want: []string{"/dev/nvidia-caps/nvidia-cap237", "/dev/nvidia-caps/nvidia-cap238"}},
		"unknown instance":         {gi: 9, wantErr: "gi9/access", wantIs: ErrNotFound},
		"unknown compute instance": {gi: 2, ci: 5, wantErr: "ci5/access", wantIs: ErrNotFound},
		"no minor":                 {gi: 5, wantErr: "no DeviceFileMinor"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := procCaps{root: root}.MIGCaps(inventory.GPU{Minor: 3}, tc.gi, tc.ci)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				if tc.wantIs != nil {
					assert.ErrorIs(t, err, tc.wantIs)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
