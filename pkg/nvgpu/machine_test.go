package nvgpu_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/nvgpu"
)

func TestParseMachine(t *testing.T) {
	tests := map[string]struct {
		machine  string
		wantFake string
		wantIs   bool
		wantErr  string
	}{
		"real NVML":     {machine: ""},
		"fake":          {machine: "fake:dgxh200", wantFake: "dgxh200", wantIs: true},
		"unknown fake":  {machine: "fake:dgx9000", wantIs: true, wantErr: `fake machine "dgx9000": want one of dgxa100`},
		"no fake: form": {machine: "dgxh200", wantErr: `machine "dgxh200": want "" (real NVML) or fake:<name>`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.wantIs, nvgpu.IsFake(tc.machine))
			fake, err := nvgpu.ParseMachine(tc.machine)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, nvgpu.ErrUnknownMachine)
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantFake, fake)
		})
	}
}
