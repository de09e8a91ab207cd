package nodesim

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/podproc"
)

func TestParseGPUUse(t *testing.T) {
	tests := map[string]struct {
		value   string
		want    gpuUse
		wantErr string
	}{
		"sm and memory": {value: "sm=30,memory=2Gi", want: gpuUse{smPercent: 30, memoryBytes: 2 << 30}},
		"spaces":        {value: " sm=50 , memory=512Mi", want: gpuUse{smPercent: 50, memoryBytes: 512 << 20}},
		"sm only":       {value: "sm=100", want: gpuUse{smPercent: 100}},
		"sm over 100":   {value: "sm=101", wantErr: `sm "101": want a percent from 0 to 100`},
		"sm negative":   {value: "sm=-1", wantErr: `sm "-1": want a percent`},
		"bad memory":    {value: "memory=lots", wantErr: `memory "lots": want a quantity`},
		"negative mem":  {value: "memory=-1Gi", wantErr: `memory "-1Gi": want a quantity`},
		"unknown key":   {value: "sm=1,util=2", wantErr: `unknown key "util": want sm or memory`},
		"not key=value": {value: "30", wantErr: "want key=value pairs such as sm=30,memory=2Gi"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseGPUUse(tc.value)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// A pod with the annotation gets one fake process per GPU device the
// plugin's claim-device info names for it (MIG instances included), with a
// cgroup naming the pod; stop ends them.
func TestGPUProcessesStartStop(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, `tierra_claim_device_info{namespace="ns",claim="c",pod="p",device="gpu-0",gpu_uuid="GPU-0",mig_gi="",mig_ci=""} 1`)
		fmt.Fprintln(w, `tierra_claim_device_info{namespace="ns",claim="c",pod="p",device="gpu-1-1g",gpu_uuid="GPU-1",mig_gi="7",mig_ci="0"} 1`)
		fmt.Fprintln(w, `tierra_claim_device_info{namespace="ns",claim="d",pod="other",device="gpu-2",gpu_uuid="GPU-2",mig_gi="",mig_ci=""} 1`)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	file, procRoot := filepath.Join(dir, "procs.json"), filepath.Join(dir, "proc")
	g := newGPUProcesses(file, procRoot, srv.URL)
	ctx := context.Background()
	const uid = "0c0c0c0c-0000-4000-8000-000000000001"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: uid,
		Annotations: map[string]string{GPUUseAnnotation: "sm=30,memory=2Gi"}}}

	require.NoError(t, g.start(ctx, pod))
	procs, err := nvgpu.ReadFakeProcesses(file)
	require.NoError(t, err)
	require.Len(t, procs, 2)
	assert.Equal(t, "GPU-0", procs[0].GPUUUID)
	assert.Nil(t, procs[0].GPUInstance)
	assert.Equal(t, "GPU-1", procs[1].GPUUUID)
	require.NotNil(t, procs[1].GPUInstance)
	assert.Equal(t, 7, *procs[1].GPUInstance)
	for _, p := range procs {
		assert.Equal(t, uint32(30), p.SMPercent)
		assert.Equal(t, uint64(2<<30), p.MemoryBytes)
		got, err := podproc.Mapper{ProcRoot: procRoot}.PodUID(p.PID)
		require.NoError(t, err)
		assert.Equal(t, uid, got)
	}
	require.NoError(t, g.start(ctx, pod), "a second start is a no-op")
	procs, err = nvgpu.ReadFakeProcesses(file)
	require.NoError(t, err)
	assert.Len(t, procs, 2)

	require.NoError(t, g.stop(pod.UID))
	procs, err = nvgpu.ReadFakeProcesses(file)
	require.NoError(t, err)
	assert.Empty(t, procs)
	_, err = podproc.Mapper{ProcRoot: procRoot}.PodUID(firstFakePID)
	assert.ErrorIs(t, err, podproc.ErrNoProcess)

	plain := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "plain"}}
	assert.NoError(t, g.start(ctx, plain), "no annotation, no processes")
	orphan := pod.DeepCopy()
	orphan.Name = "q"
	assert.ErrorContains(t, g.start(ctx, orphan), "the plugin reports no GPU prepared for it")
}
