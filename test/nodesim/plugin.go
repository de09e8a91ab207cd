package nodesim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/test/cluster"
)

// pluginCommand is how the kubelet would run the plugin's DaemonSet
// container on this node.
func (n *Node) pluginCommand() *exec.Cmd {
	p := n.paths
	args := append([]string{
		"--node-name=" + n.opts.Name, "--machine=" + n.opts.Machine,
		"--state-dir=" + p.state, "--cdi-dir=" + p.cdi,
		"--plugin-data-dir=" + p.pluginDir, "--registrar-dir=" + p.registry,
		"--kubeconfig=" + n.opts.Kubeconfig, "--metrics-address=" + n.opts.MetricsAddress,
		"--proc-root=" + p.fakeProc,
	}, n.opts.PluginArgs...)
	if n.opts.MIGEnabled {
		// The plugin's own demo switch: MIG on for this node's fake GPUs.
		args = append(args, "--fake-mig-nodes="+corev1.LabelHostname+"="+n.opts.Name)
	}
	cmd := exec.Command(n.opts.PluginBinary, args...)
	cmd.Env = append(os.Environ(), nvgpu.FakeStateEnv+"="+p.fakeState, nvgpu.FakeFaultsEnv+"="+p.faults,
		nvgpu.FakeProcessesEnv+"="+p.fakeProcesses)
	return cmd
}

// MetricsURL is the plugin's /metrics URL; "" without
// Options.MetricsAddress.
func (n *Node) MetricsURL() string {
	if n.opts.MetricsAddress == "" {
		return ""
	}
	return "http://" + n.opts.MetricsAddress + metrics.Path
}

// restartDelay is how long the supervisor waits before restarting a plugin
// that exited (the kubelet backs off from 10 s; a test wants it quick).
const restartDelay = 500 * time.Millisecond

// startedLine is what the plugin logs once it serves the kubelet.
var startedLine = []byte(`"Kubelet plugin started"`)

// supervisor runs a process (the plugin, a container) and restarts it when
// it exits, until stopped.
type supervisor struct {
	name     string // in messages
	command  func() *exec.Cmd
	logPath  string
	progress io.Writer

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool
	done    chan struct{}
}

func newSupervisor(name string, command func() *exec.Cmd, logPath string, progress io.Writer) *supervisor {
	return &supervisor{name: name, command: command, logPath: logPath, progress: progress, done: make(chan struct{})}
}

// start runs the plugin and keeps it running in the background.
func (s *supervisor) start(ctx context.Context) error {
	if err := s.spawn(); err != nil {
		close(s.done)
		return err
	}
	go s.loop(ctx)
	return nil
}

func (s *supervisor) spawn() error {
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s log: %w", s.name, err)
	}
	defer log.Close()
	cmd := s.command()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cluster.StartTiedToParent(cmd); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

// loop restarts the plugin whenever it exits, until stop.
func (s *supervisor) loop(ctx context.Context) {
	defer close(s.done)
	logger := klog.FromContext(ctx)
	for {
		s.mu.Lock()
		exited := s.exited
		s.mu.Unlock()
		<-exited
		s.mu.Lock()
		stopped, state := s.stopped, s.cmd.ProcessState
		s.mu.Unlock()
		if stopped || ctx.Err() != nil {
			return
		}
		logger.Info("Process exited; restarting it", "process", s.name, "state", state.String(), "log", s.logPath)
		fmt.Fprintf(s.progress, "%s exited (%s); restarting it\n", s.name, state)
		select {
		case <-ctx.Done():
			return
		case <-time.After(restartDelay):
		}
		if err := s.spawn(); err != nil {
			logger.Error(err, "Restart process", "process", s.name)
			return
		}
	}
}

// kill sends SIGKILL to the running plugin; loop restarts it.
func (s *supervisor) kill() error {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", s.name, err)
	}
	return nil
}

// stop ends the plugin with SIGTERM (SIGKILL after 10 s) and does not
// restart it.
func (s *supervisor) stop() error {
	s.mu.Lock()
	s.stopped = true
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	<-s.done
	return nil
}

// starts counts the plugin's successful starts, from its log.
func (s *supervisor) starts() int {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return 0
	}
	return bytes.Count(data, startedLine)
}
