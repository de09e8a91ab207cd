package crash

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
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

// assertClean: no MIG instance, every compute mode Default, no CDI spec,
// no checkpoint record.
func (n *node) assertClean(t *testing.T, what string) {
	t.Helper()
	st := n.machine(t)
	require.Zero(t, st.migInstances(), "%s: MIG instances leaked", what)
	require.Zero(t, st.exclusiveGPUs(), "%s: compute mode not restored", what)
	require.Empty(t, files(t, n.cdiDir), "%s: CDI specs leaked", what)
	require.Empty(t, files(t, filepath.Join(n.stateDir, "checkpoint")), "%s: checkpoint records left", what)
}

// assertPreparedOnce: exactly the claim's hardware change and one CDI spec.
func (n *node) assertPreparedOnce(t *testing.T, mig bool, what string) {
	t.Helper()
	st := n.machine(t)
	if mig {
		require.Equal(t, 1, st.migInstances(), "%s: MIG instances", what)
		require.Zero(t, st.exclusiveGPUs(), "%s: exclusive GPUs", what)
	} else {
		require.Zero(t, st.migInstances(), "%s: MIG instances", what)
		require.Equal(t, 1, st.exclusiveGPUs(), "%s: exclusive GPUs", what)
	}
	require.Len(t, files(t, n.cdiDir), 1, "%s: CDI specs", what)
}
