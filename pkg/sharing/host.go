package sharing

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// HostDaemons runs each MPS control daemon as a process of the host
// (nvidia-cuda-mps-control -d forks into the background), through Runner.
// Simple, but the daemon shares the plugin's fate where the plugin runs in
// a container: use PodDaemons there.
type HostDaemons struct {
	Runner Runner
	// ControlCommand is nvidia-cuda-mps-control; "" means
	// DefaultMPSControlCommand.
	ControlCommand string
}

var _ Daemons = (*HostDaemons)(nil)

func (h *HostDaemons) command() string {
	if h.ControlCommand == "" {
		return DefaultMPSControlCommand
	}
	return h.ControlCommand
}

// Start implements Daemons: -d, then the limits on the control pipe.
func (h *HostDaemons) Start(ctx context.Context, d Daemon) error {
	if err := h.Runner.Run(ctx, Cmd{Argv: []string{h.command(), "-d"}, Env: d.Env()}); err != nil {
		return err
	}
	if cmds := d.Limits.Commands(); len(cmds) > 0 {
		if err := h.control(ctx, d, cmds...); err != nil {
			return fmt.Errorf("set limits %s: %w", d.Limits, err)
		}
	}
	return nil
}

// Stop implements Daemons: quit on the control pipe.
func (h *HostDaemons) Stop(ctx context.Context, d Daemon) error {
	return h.control(ctx, d, "quit")
}

// List implements Daemons: a host daemon always has its directory.
func (h *HostDaemons) List(context.Context) ([]string, error) { return nil, nil }

func (h *HostDaemons) control(ctx context.Context, d Daemon, cmds ...string) error {
	return Control(ctx, h.Runner, h.command(), d, cmds...)
}

// Control sends commands to a daemon's control pipe, one per line.
func Control(ctx context.Context, r Runner, command string, d Daemon, cmds ...string) error {
	if len(cmds) == 0 {
		return errors.New("control: no command")
	}
	return r.Run(ctx, Cmd{Argv: []string{command}, Env: d.Env(), Stdin: strings.Join(cmds, "\n") + "\n"})
}
