package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/internal/cli"
	"github.com/tierra-gpu/tierra/pkg/plugin"
	"github.com/tierra-gpu/tierra/pkg/sharing"
)

// mpsDaemonCommand is the subcommand the MPS daemon pods run.
const mpsDaemonCommand = "mps-daemon"

// parseMPSDaemon reads the supervisor's flags (sharing.SupervisorArgs).
func parseMPSDaemon(args []string, out io.Writer) (sharing.SuperviseOptions, bool, error) {
	var o sharing.SuperviseOptions
	var probe bool
	fs := flag.NewFlagSet("tierra-kubelet-plugin mps-daemon", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.Daemon.GPUUUID, "gpu", "", "UUID of the GPU the daemon serves (required)")
	fs.StringVar(&o.Daemon.Dir, "dir", "", "the GPU's MPS directory on the host, mounted at the same path (required): pipe/, log/, shm/")
	fs.StringVar(&o.ControlCommand, "control-command", plugin.DefaultMPSControlCommand, "nvidia-cuda-mps-control, a name on PATH or a path")
	pct := fs.Int("active-thread-percentage", 0, "set_default_active_thread_percentage for every client (1-100); 0 for no limit")
	fs.Int64Var(&o.Daemon.Limits.PinnedDeviceMemoryMiB, "pinned-device-memory-mib", 0, "set_default_device_pinned_mem_limit for every client, in MiB; 0 for no limit")
	fs.BoolVar(&probe, "probe", false, "health check: exit 0 when the daemon runs with its limits set and answers")
	fs.Usage = func() {
		fmt.Fprint(out, `tierra-kubelet-plugin mps-daemon supervises one GPU's MPS control daemon in
the pod the kubelet plugin creates for it (one Deployment per GPU, which
outlives plugin restarts): it runs nvidia-cuda-mps-control -f, sets the
limits every client gets (clients can only lower them), reports ready, and
asks the daemon to quit on SIGTERM.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, false, err
	}
	var errs []error
	if o.Daemon.GPUUUID == "" {
		errs = append(errs, errors.New("--gpu is required"))
	}
	if o.Daemon.Dir == "" {
		errs = append(errs, errors.New("--dir is required"))
	}
	if *pct < 0 || *pct > 100 {
		errs = append(errs, fmt.Errorf("--active-thread-percentage %d: want 1-100, or 0 for no limit", *pct))
	}
	if o.Daemon.Limits.PinnedDeviceMemoryMiB < 0 {
		errs = append(errs, fmt.Errorf("--pinned-device-memory-mib %d: want a positive size, or 0 for no limit", o.Daemon.Limits.PinnedDeviceMemoryMiB))
	}
	o.Daemon.Limits.ActiveThreadPercentage = int32(*pct)
	return o, probe, errors.Join(errs...)
}

func runMPSDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, probe, err := parseMPSDaemon(args, stderr)
	if err != nil {
		return cli.Usage(err)
	}
	if probe {
		return sharing.Probe(ctx, o)
	}
	o.Output = stdout
	return sharing.Supervise(klog.NewContext(ctx, klog.Background()), o)
}
