package usage_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/podproc"
	"github.com/tierra-gpu/tierra/pkg/usage"
)

const (
	gpu0 = "GPU-0000"
	gpu1 = "GPU-1111"
	gib  = 1 << 30
)

// pidMap is a PodMapper over a table; PIDs it lacks are host processes.
type pidMap map[uint32]string

func (m pidMap) PodUID(pid uint32) (string, error) {
	switch uid, ok := m[pid]; {
	case !ok:
		return "", fmt.Errorf("process %d: %w", pid, podproc.ErrNotInPod)
	case uid == "gone":
		return "", fmt.Errorf("process %d: %w", pid, podproc.ErrNoProcess)
	case uid == "unreadable":
		return "", errors.New("permission denied")
	default:
		return uid, nil
	}
}

func proc(pid uint32, gpu string, sm float64, memGiB uint64) nvgpu.ProcessUse {
	return nvgpu.ProcessUse{PID: pid, GPUUUID: gpu, GPUInstanceID: -1, ComputeInstanceID: -1,
		UsedMemoryBytes: memGiB * gib, UsedMemoryKnown: true, SMUtilPercent: sm, SMUtilKnown: true}
}

func migProc(pid uint32, gpu string, gi, ci int, memGiB uint64) nvgpu.ProcessUse {
	p := proc(pid, gpu, 0, memGiB)
	p.GPUInstanceID, p.ComputeInstanceID, p.SMUtilKnown = gi, ci, false
	return p
}

func claim(uid string, pods []usage.Pod, devs ...usage.GPURef) usage.Claim {
	c := usage.Claim{UID: uid, Namespace: "team-a", Name: "claim-" + uid, Tenant: "acme", Tier: "inference", Pods: pods}
	for _, d := range devs {
		c.Devices = append(c.Devices, usage.Device{GPU: d, Product: "NVIDIA H200", MemoryBytes: 141 * gib, Multiprocessors: 132})
	}
	return c
}

type podUse struct {
	claim, pod string
	gpu        usage.GPURef
	procs      int
	memGiB     uint64
	memKnown   bool
	sm         float64
	smKnown    bool
}

func TestAttribute(t *testing.T) {
	podA, podB := usage.Pod{UID: "uid-a", Name: "a"}, usage.Pod{UID: "uid-b", Name: "b"}
	shared := claim("shared", []usage.Pod{podA, podB}, usage.WholeGPU(gpu0))
	mig := claim("mig", []usage.Pod{podB}, usage.MIGRef(gpu1, 3, 0))
	claims := []usage.Claim{shared, mig}
	pids := pidMap{1: "uid-a", 2: "uid-a", 3: "uid-b", 4: "uid-b", 5: "uid-other", 6: "gone", 7: "unreadable", 8: "uid-b", 9: "uid-a"}
	tests := map[string]struct {
		procs         []nvgpu.ProcessUse
		want          []podUse
		wantUnattr    []usage.Unattributed
		wantMapErrors int
	}{
		"two pods of one tenant time-slicing a GPU": {
			procs: []nvgpu.ProcessUse{proc(1, gpu0, 30, 4), proc(3, gpu0, 50, 6)},
			want: []podUse{{"shared", "a", usage.WholeGPU(gpu0), 1, 4, true, 0.3, true},
				{"shared", "b", usage.WholeGPU(gpu0), 1, 6, true, 0.5, true}},
		},
		"processes of one pod add up, SM capped at 1": {
			procs: []nvgpu.ProcessUse{proc(1, gpu0, 60, 1), proc(2, gpu0, 50, 2), proc(9, gpu0, 20, 3)},
			want:  []podUse{{"shared", "a", usage.WholeGPU(gpu0), 3, 6, true, 1, true}},
		},
		"MIG instance: memory, SM unknown": {
			procs: []nvgpu.ProcessUse{migProc(4, gpu1, 3, 0, 9), migProc(8, gpu1, 3, 0, 2)},
			want:  []podUse{{"mig", "b", usage.MIGRef(gpu1, 3, 0), 2, 11, true, 0, false}},
		},
		"hidden memory is not a zero": {
			procs: []nvgpu.ProcessUse{proc(1, gpu0, 10, 2), func() nvgpu.ProcessUse {
				p := proc(2, gpu0, 10, 0)
				p.UsedMemoryKnown, p.UsedMemoryBytes = false, ^uint64(0)
				return p
			}()},
			want: []podUse{{"shared", "a", usage.WholeGPU(gpu0), 2, 2, false, 0.2, true}},
		},
		"a pod on a device its claim does not hold": {
			procs:      []nvgpu.ProcessUse{proc(1, gpu1, 10, 1), migProc(4, gpu1, 5, 0, 2)},
			wantUnattr: []usage.Unattributed{{GPU: usage.WholeGPU(gpu1), Processes: 1, MemoryBytes: gib}, {GPU: usage.MIGRef(gpu1, 5, 0), Processes: 1, MemoryBytes: 2 * gib}},
		},
		"host, exited, foreign-pod and unreadable processes": {
			procs:         []nvgpu.ProcessUse{proc(99, gpu0, 1, 1), proc(6, gpu0, 1, 1), proc(5, gpu0, 1, 1), proc(7, gpu0, 1, 1)},
			wantUnattr:    []usage.Unattributed{{GPU: usage.WholeGPU(gpu0), Processes: 4, MemoryBytes: 4 * gib}},
			wantMapErrors: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := usage.Attribute(tc.procs, pids, claims)
			var got []podUse
			for _, u := range a.Pods {
				require.NotNil(t, u.Claim)
				got = append(got, podUse{u.Claim.UID, u.Pod.Name, u.GPU, u.Processes, u.MemoryBytes / gib, u.MemoryKnown, u.SMRatio, u.SMKnown})
			}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantUnattr, a.Unattributed)
			assert.Equal(t, tc.wantMapErrors, a.MapErrors)
		})
	}
}
