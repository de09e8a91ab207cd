package sharing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// SuperviseOptions configure the supervisor of one MPS control daemon: the
// main process of its pod (tierra-kubelet-plugin mps-daemon).
type SuperviseOptions struct {
	Daemon Daemon
	// ControlCommand is nvidia-cuda-mps-control.
	ControlCommand string
	// Output receives the daemon's output (the pod's log).
	Output io.Writer
	// StartTimeout bounds the wait for the daemon to answer; 0 means 30s.
	StartTimeout time.Duration
}

// readyFile, in the daemon's directory, is written once the limits are set.
const readyFile = "ready"

// Supervise runs the daemon in the foreground (-f), waits until it answers,
// sets its limits, marks it ready and then lives as long as it does. When
// ctx ends (SIGTERM: the Deployment is deleted), it asks the daemon to
// quit and waits for it. A daemon that exits by itself is an error: the
// kubelet restarts the container.
func Supervise(ctx context.Context, o SuperviseOptions) error {
	logger := klog.FromContext(ctx)
	d := o.Daemon
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	for _, dir := range []string{d.PipeDir(), d.LogDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("MPS directory: %w", err)
		}
	}
	ready := filepath.Join(d.Dir, readyFile)
	if err := os.Remove(ready); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clear readiness: %w", err)
	}
	cmd := exec.Command(o.ControlCommand, "-f")
	cmd.Env = append(os.Environ(), d.Env()...)
	cmd.Stdout, cmd.Stderr = o.Output, o.Output
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s -f: %w", o.ControlCommand, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	logger.Info("MPS control daemon started", "gpu", d.GPUUUID, "pid", cmd.Process.Pid, "limits", d.Limits.String())

	err := configure(ctx, o, exited)
	if err == nil {
		if err = os.WriteFile(ready, []byte(d.Limits.String()+"\n"), 0o644); err != nil {
			err = fmt.Errorf("mark ready: %w", err)
		}
	}
	if err == nil {
		logger.Info("MPS control daemon ready", "gpu", d.GPUUUID)
		select {
		case err = <-exited:
			_ = os.Remove(ready)
			return fmt.Errorf("MPS control daemon of %s exited: %w", d.GPUUUID, errors.Join(err, errors.New("exited")))
		case <-ctx.Done():
		}
	}
	_ = os.Remove(ready)
	return errors.Join(err, quit(o, cmd, exited))
}

// configure waits for the daemon to answer, then sets its limits.
func configure(ctx context.Context, o SuperviseOptions, exited <-chan error) error {
	var exitErr error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, o.StartTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case exitErr = <-exited:
			return false, fmt.Errorf("daemon exited: %w", errors.Join(exitErr, errors.New("before it answered")))
		default:
		}
		return Control(ctx, ExecRunner{}, o.ControlCommand, o.Daemon, "get_server_list") == nil, nil
	})
	if err != nil {
		return fmt.Errorf("MPS control daemon of %s does not answer: %w", o.Daemon.GPUUUID, err)
	}
	if cmds := o.Daemon.Limits.Commands(); len(cmds) > 0 {
		if err := Control(ctx, ExecRunner{}, o.ControlCommand, o.Daemon, cmds...); err != nil {
			return fmt.Errorf("set MPS limits %s: %w", o.Daemon.Limits, err)
		}
	}
	return nil
}

// quit asks the daemon to quit (it waits for its servers' clients) and
// kills it if it is still there after a while.
func quit(o SuperviseOptions, cmd *exec.Cmd, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	qerr := Control(ctx, ExecRunner{}, o.ControlCommand, o.Daemon, "quit")
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		return fmt.Errorf("MPS control daemon of %s did not quit, killed: %w", o.Daemon.GPUUUID, errors.Join(qerr, ctx.Err()))
	}
}

// Probe is the daemon pod's health check: ready (limits set) and answering.
func Probe(ctx context.Context, o SuperviseOptions) error {
	if _, err := os.Stat(filepath.Join(o.Daemon.Dir, readyFile)); err != nil {
		return fmt.Errorf("MPS control daemon of %s not ready: %w", o.Daemon.GPUUUID, err)
	}
	if err := Control(ctx, ExecRunner{}, o.ControlCommand, o.Daemon, "get_server_list"); err != nil {
		return fmt.Errorf("MPS control daemon of %s does not answer: %w", o.Daemon.GPUUUID, err)
	}
	return nil
}
