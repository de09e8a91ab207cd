package crash

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tierra-gpu/tierra/pkg/sharing"
)

// machineState is the part of the fake machine's state file the test reads.
type machineState struct {
	GPUs []struct {
		ComputeMode  int               `json:"computeMode"`
		GPUInstances []json.RawMessage `json:"gpuInstances"`
	} `json:"gpus"`
}

// nvmlExclusiveProcess is NVML's COMPUTEMODE_EXCLUSIVE_PROCESS.
const nvmlExclusiveProcess = 3

// What the sharing stand-in (./fakesharing) keeps on disk.
const (
	daemonMarker = "fake-mps-daemon"
	smiDirEnv    = "TIERRA_FAKE_NVIDIA_SMI_DIR"
)

func (n *node) machine(t *testing.T) machineState {
	t.Helper()
	data, err := os.ReadFile(n.fakeState)
	require.NoError(t, err)
	var st machineState
	require.NoError(t, json.Unmarshal(data, &st))
	return st
}

// migInstances counts the MIG GPU instances on the machine.
func (st machineState) migInstances() int {
	n := 0
	for _, g := range st.GPUs {
		n += len(g.GPUInstances)
	}
	return n
}

// exclusiveGPUs counts the GPUs in EXCLUSIVE_PROCESS compute mode.
func (st machineState) exclusiveGPUs() int {
	n := 0
	for _, g := range st.GPUs {
		if g.ComputeMode == nvmlExclusiveProcess {
			n++
		}
	}
	return n
}

// files lists the plain files in dir (subdirectories such as a quarantine
// are not claims).
func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// assertClean: no MIG instance, every compute mode Default, no MPS
// daemon, every time-slice Default, no CDI spec, no checkpoint record.
func (n *node) assertClean(t *testing.T, what string) {
	t.Helper()
	st := n.machine(t)
	require.Zero(t, st.migInstances(), "%s: MIG instances leaked", what)
	require.Zero(t, st.exclusiveGPUs(), "%s: compute mode not restored", what)
	require.Empty(t, n.daemons(t), "%s: MPS daemons leaked", what)
	require.Empty(t, n.daemonPods(t), "%s: MPS daemon Deployments leaked", what)
	require.Empty(t, n.timeSlices(t), "%s: time-slice not restored", what)
	require.Empty(t, files(t, n.cdiDir), "%s: CDI specs leaked", what)
	require.Empty(t, files(t, filepath.Join(n.stateDir, "checkpoint")), "%s: checkpoint records left", what)
}

// assertPreparedOnce: exactly the claim's change on its GPU and one CDI spec.
func (n *node) assertPreparedOnce(t *testing.T, c allocatedClaim, what string) {
	t.Helper()
	st := n.machine(t)
	var wantMIG, wantExclusive int
	wantDaemons, wantSlices := []string{}, map[string]string{}
	switch c.mode {
	case modeMIG:
		wantMIG = 1
	case modeExclusive:
		wantExclusive = 1
	case modeMPS, modeMPSPod:
		wantDaemons = []string{c.gpu}
	case modeTimeSlice:
		wantSlices[c.gpu] = timeSliceLong
	}
	require.Equal(t, wantMIG, st.migInstances(), "%s: MIG instances", what)
	require.Equal(t, wantExclusive, st.exclusiveGPUs(), "%s: exclusive GPUs", what)
	require.Equal(t, wantDaemons, n.daemons(t), "%s: MPS daemons", what)
	if c.mode == modeMPSPod {
		require.Equal(t, wantDaemons, n.daemonPods(t), "%s: MPS daemon Deployments", what)
	}
	require.Equal(t, wantSlices, n.timeSlices(t), "%s: time-slices other than Default", what)
	require.Len(t, files(t, n.cdiDir), 1, "%s: CDI specs", what)
}

// daemons are the GPUs whose MPS daemon the stand-in marks running
// (STATE/mps/<uuid>/pipe/fake-mps-daemon, which holds CUDA_VISIBLE_DEVICES).
func (n *node) daemons(t *testing.T) []string {
	t.Helper()
	markers, err := filepath.Glob(filepath.Join(n.stateDir, "mps", "*", "pipe", daemonMarker))
	require.NoError(t, err)
	out := []string{}
	for _, m := range markers {
		gpu := filepath.Base(filepath.Dir(filepath.Dir(m)))
		data, err := os.ReadFile(m)
		require.NoError(t, err)
		require.Equal(t, gpu, strings.TrimSpace(string(data)), "the daemon of %s runs on another GPU", gpu)
		out = append(out, gpu)
	}
	return out
}

// timeSlices are the GPUs whose time-slice the nvidia-smi stand-in last
// set to other than Default (0), with that value.
func (n *node) timeSlices(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range files(t, n.smiDir) {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		if v := string(data); v != "0" {
			out[filepath.Base(f)] = v
		}
	}
	return out
}

// daemonPods are the GPUs whose MPS daemon Deployment exists.
func (n *node) daemonPods(t *testing.T) []string {
	t.Helper()
	list, err := n.cs.AppsV1().Deployments(daemonNamespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: sharing.LabelComponent + "=" + sharing.ComponentMPS})
	require.NoError(t, err)
	out := []string{}
	for _, d := range list.Items {
		if d.Annotations[sharing.AnnotationMPSNode] == n.name {
			out = append(out, d.Annotations[sharing.AnnotationMPSGPU])
		}
	}
	return out
}
