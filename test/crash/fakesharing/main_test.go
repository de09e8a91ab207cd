package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMPSControl(t *testing.T) {
	pipe := t.TempDir()
	env := func(k string) string {
		return map[string]string{"CUDA_MPS_PIPE_DIRECTORY": pipe, "CUDA_VISIBLE_DEVICES": "GPU-1"}[k]
	}
	ctl := func(args []string, stdin string) error {
		return run("nvidia-cuda-mps-control", args, env, strings.NewReader(stdin))
	}
	require.ErrorContains(t, ctl(nil, "quit\n"), "cannot find MPS control daemon", "no daemon to quit")
	require.NoError(t, ctl([]string{"-d"}, ""))
	data, err := os.ReadFile(filepath.Join(pipe, DaemonMarker))
	require.NoError(t, err)
	assert.Equal(t, "GPU-1\n", string(data))
	require.ErrorContains(t, ctl([]string{"-d"}, ""), "already running")
	require.NoError(t, ctl(nil, "quit\n"))
	assert.NoFileExists(t, filepath.Join(pipe, DaemonMarker))
}

func TestNvidiaSMI(t *testing.T) {
	dir := t.TempDir()
	env := func(k string) string { return map[string]string{SMIDirEnv: dir}[k] }
	smi := func(args ...string) error { return run("nvidia-smi", args, env, nil) }
	require.NoError(t, smi("compute-policy", "-i", "GPU-1", "--set-timeslice=3"))
	data, err := os.ReadFile(filepath.Join(dir, "GPU-1"))
	require.NoError(t, err)
	assert.Equal(t, "3", string(data))
	require.Error(t, smi("compute-policy", "-i", "GPU-1", "--set-timeslice=9"))
	require.Error(t, smi("-q"))
	require.Error(t, run("nvidia-other", nil, env, nil))
}
