package cluster

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStopReturnsOnlyOnceReaped holds the reaper back after the child has
// died, so the child sits as a zombie: stop must wait for the reap, not for
// the zombie state, or kill(pid, 0) still finds the PID after stop returns
// (the flake seen in TestSchedulerAllocatesClaim, about 2 runs in 7).
func TestStopReturnsOnlyOnceReaped(t *testing.T) {
	bin, cmd := startSleep(t)
	p := &process{Name: "sleep", Path: bin, PID: cmd.Process.Pid, done: make(chan struct{})}
	reapDelay := 500 * time.Millisecond
	go func() {
		// Let the child die and stay a zombie for a while before reaping.
		for !zombie(p.PID) {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(reapDelay)
		_ = cmd.Wait()
		close(p.done)
	}()

	t0 := time.Now()
	require.NoError(t, p.stop())
	require.GreaterOrEqual(t, time.Since(t0), reapDelay, "stop returned before the reap")
	require.True(t, errors.Is(syscall.Kill(p.PID, 0), syscall.ESRCH), "pid %d still exists after stop", p.PID)
	require.NoError(t, p.stop(), "stopping a stopped process")
}

// TestStopOfAForeignProcessAcceptsItsZombie: a process started by another Go
// process (a Cluster loaded from its state file) cannot be reaped here, so
// its zombie state is as gone as it gets.
func TestStopOfAForeignProcessAcceptsItsZombie(t *testing.T) {
	bin, cmd := startSleep(t)
	t.Cleanup(func() { _ = cmd.Wait() })
	p := &process{Name: "sleep", Path: bin, PID: cmd.Process.Pid} // no done: not ours
	require.True(t, p.alive())
	require.NoError(t, p.stop())
	require.False(t, p.alive())
}

func zombie(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	return err == nil && isZombie(stat)
}

// startSleep starts `sleep 60` and returns its resolved binary path (what
// /proc/<pid>/exe shows) and the command.
func startSleep(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	bin, err := exec.LookPath("sleep")
	require.NoError(t, err)
	bin, err = filepath.EvalSymlinks(bin)
	require.NoError(t, err)
	cmd := exec.Command(bin, "60")
	require.NoError(t, cmd.Start())
	return bin, cmd
}

// A process started through a symlinked directory (a checkout whose
// _output is a link) is still recognised, so a loaded Cluster stops it
// (make demo-down left such processes running).
func TestAliveThroughASymlinkedDirectory(t *testing.T) {
	real, cmd := startSleep(t)
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	link := filepath.Join(t.TempDir(), "bin")
	require.NoError(t, os.Symlink(filepath.Dir(real), link))
	p := &process{Name: "sleep", Path: filepath.Join(link, filepath.Base(real)), PID: cmd.Process.Pid}
	require.True(t, p.alive(), "started as %s, runs as %s", p.Path, real)
	require.False(t, sameBinary(real, filepath.Join(link, "other")))
	require.True(t, sameBinary(real+" (deleted)", real))
}
