//go:build cgo

package nvgpu

import (
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smByPID turns each answer NVML (through go-nvml) gives into "known" or
// not, and averages the samples newer than since per process.
func TestSMByPID(t *testing.T) {
	since := time.UnixMicro(1_000_000)
	sample := func(pid uint32, ts uint64, sm uint32) nvml.ProcessUtilizationSample {
		return nvml.ProcessUtilizationSample{Pid: pid, TimeStamp: ts, SmUtil: sm}
	}
	tests := map[string]struct {
		samples   []nvml.ProcessUtilizationSample
		ret       nvml.Return
		want      map[uint32]float64
		wantKnown bool
		wantErr   bool
	}{
		"mean of the newer samples": {
			samples: []nvml.ProcessUtilizationSample{sample(1, 900_000, 90), sample(1, 1_100_000, 20),
				sample(1, 1_200_000, 40), sample(2, 1_300_000, 250)},
			ret: nvml.SUCCESS, want: map[uint32]float64{1: 30, 2: 100}, wantKnown: true,
		},
		"no sample since":             {ret: nvml.ERROR_NOT_FOUND, want: map[uint32]float64{}, wantKnown: true},
		"go-nvml's empty answer":      {samples: []nvml.ProcessUtilizationSample{}, ret: nvml.ERROR_INSUFFICIENT_SIZE, want: map[uint32]float64{}, wantKnown: true},
		"not supported (MIG, vGPU)":   {ret: nvml.ERROR_NOT_SUPPORTED},
		"a failure is an error":       {ret: nvml.ERROR_UNKNOWN, wantErr: true},
		"samples read before a raise": {samples: []nvml.ProcessUtilizationSample{sample(3, 2_000_000, 7)}, ret: nvml.ERROR_INSUFFICIENT_SIZE, want: map[uint32]float64{3: 7}, wantKnown: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var gotLastSeen uint64
			d := device{Device: &mock.Device{GetProcessUtilizationFunc: func(lastSeen uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) {
				gotLastSeen = lastSeen
				return tc.samples, tc.ret
			}}, uuid: "GPU-x"}
			got, known, err := smByPID(d, since)
			assert.Equal(t, uint64(1_000_000), gotLastSeen, "since is passed in microseconds")
			if tc.wantErr {
				require.Error(t, err)
				assert.ErrorContains(t, err, "GPU-x")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantKnown, known)
			assert.Equal(t, tc.want, got)
		})
	}
}
