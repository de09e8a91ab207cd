// Command tierra-kubelet-plugin is Tierra's DRA kubelet plugin for driver
// gpu.tierra.dev: flags → plugin.Config → plugin.Run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/pkg/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == mpsDaemonCommand {
		if err := runMPSDaemon(ctx, os.Args[2:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "tierra-kubelet-plugin mps-daemon:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parse(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err == nil {
		ctx = klog.NewContext(ctx, klog.Background())
		err = plugin.Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tierra-kubelet-plugin:", err)
		os.Exit(1)
	}
}

// parse reads flags, each defaulting to its TIERRA_* environment variable.
func parse(args []string, getenv func(string) string, out io.Writer) (plugin.Config, error) {
	var cfg plugin.Config
	fs := flag.NewFlagSet("tierra-kubelet-plugin", flag.ContinueOnError)
	fs.SetOutput(out)
	str := func(p *string, name, env, def, usage string) {
		if v := getenv(env); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, env))
	}
	str(&cfg.NodeName, "node-name", "TIERRA_NODE_NAME", "", "name of this node: the pool the plugin publishes and prepares for; required")
	str(&cfg.Machine, "machine", "TIERRA_MACHINE", "", `GPUs to drive: "" for the real NVML, "fake:<name>" for a fake machine (dgxa100, dgxh100, dgxh200, dgxb200, l4x4, mixed)`)
	str(&cfg.StateDir, "state-dir", "TIERRA_STATE_DIR", plugin.DefaultStateDir, "directory of the claim checkpoint; must survive plugin restarts")
	str(&cfg.CDIDir, "cdi-dir", "TIERRA_CDI_DIR", plugin.DefaultCDIDir, "directory the container runtime reads CDI specs from; one spec per prepared claim")
	str(&cfg.PluginDataDir, "plugin-data-dir", "TIERRA_PLUGIN_DATA_DIR", plugin.DefaultPluginDataDir, "directory of the DRA gRPC socket (dra.sock) the kubelet calls")
	str(&cfg.RegistrarDir, "registrar-dir", "TIERRA_REGISTRAR_DIR", plugin.DefaultRegistrarDir, "kubelet plugin registration directory, where the registration socket goes")
	str(&cfg.Kubeconfig, "kubeconfig", "TIERRA_KUBECONFIG", "", "kubeconfig file; empty means the in-cluster service account")
	str(&cfg.TierPolicy, "tier-policy", "TIERRA_TIER_POLICY", plugin.DefaultTierPolicy, "name of the TierPolicy (tierra.dev/v1alpha1) that decides how GPUs are published")
	str(&cfg.TierPolicyFile, "tier-policy-file", "TIERRA_TIER_POLICY_FILE", "", "TierPolicy YAML used when the CRD or the named object is absent; without it the plugin fails then")
	str(&cfg.PodUID, "pod-uid", "TIERRA_POD_UID", "", "UID of the plugin's own pod (downward API); set it so a DaemonSet rollout can run the new pod beside the old one without a gap in prepare")
	str(&cfg.MPSControlCommand, "mps-control-command", "TIERRA_MPS_CONTROL_COMMAND", plugin.DefaultMPSControlCommand, "command that starts (-d) and stops (quit) a GPU's MPS control daemon; a name on PATH or a path")
	str(&cfg.NvidiaSMICommand, "nvidia-smi-command", "TIERRA_NVIDIA_SMI_COMMAND", plugin.DefaultNvidiaSMICommand, "nvidia-smi, which sets the time-slice of time-sliced GPUs (compute-policy --set-timeslice); a name on PATH or a path")
	str(&cfg.MPSDaemonImage, "mps-daemon-image", "TIERRA_MPS_DAEMON_IMAGE", "", "image of the MPS daemon pods (this plugin's image); when set, each GPU's MPS control daemon runs in a pod of its own that outlives the plugin, otherwise the plugin runs it itself")
	str(&cfg.MPSDaemonCommand, "mps-daemon-command", "TIERRA_MPS_DAEMON_COMMAND", plugin.DefaultMPSDaemonCommand, "the MPS daemon's supervisor in --mps-daemon-image (words split on spaces)")
	str(&cfg.MPSDaemonPriorityClass, "mps-daemon-priority-class", "TIERRA_MPS_DAEMON_PRIORITY_CLASS", plugin.DefaultMPSDaemonPriorityClass, "PriorityClass of the MPS daemon pods; empty for none")
	str(&cfg.MPSDaemonRuntimeClass, "mps-daemon-runtime-class", "TIERRA_MPS_DAEMON_RUNTIME_CLASS", "", "RuntimeClass of the MPS daemon pods that injects the NVIDIA driver (e.g. nvidia); empty for the node's default")
	str(&cfg.Namespace, "namespace", "TIERRA_NAMESPACE", "", "the plugin's namespace (downward API): where the MPS daemon pods go")
	str(&cfg.MetricsAddress, "metrics-address", "TIERRA_METRICS_ADDRESS", plugin.DefaultMetricsAddress, "host:port of the Prometheus /metrics endpoint (requests, errors, prepared devices, GPU health, claim-device info); empty serves none")
	str(&cfg.ProcRoot, "proc-root", "TIERRA_PROC_ROOT", plugin.DefaultProcRoot, "the host's /proc as the plugin sees it (e.g. /host/proc, mounted read-only): NVML reports host PIDs, whose cgroups name their pods; per-pod GPU use and idle/oversized claims need it and the metrics; empty turns them off")
	var idleS, idleWindowS, usageS string
	str(&idleS, "idle-threshold", "TIERRA_IDLE_THRESHOLD", strconv.FormatFloat(plugin.DefaultIdleThreshold, 'g', -1, 64), "SM share (above 0, at most 1) under which a GPU counts as unused; a claim whose GPUs all stay under it for --idle-window is idle (metric, and a Warning GPUIdle event on its pods)")
	str(&idleWindowS, "idle-window", "TIERRA_IDLE_WINDOW", plugin.DefaultIdleWindow.String(), "how long a claim's GPUs must stay under --idle-threshold for the claim to be idle; also how long a claim is watched before a smaller device is suggested (a Normal GPUOversized event)")
	str(&usageS, "usage-interval", "TIERRA_USAGE_INTERVAL", plugin.DefaultUsageInterval.String(), "time between two readings of the GPUs' per-process use for idle and oversized claims")
	var runnerS string
	str(&runnerS, "sharing-runner", "TIERRA_SHARING_RUNNER", string(plugin.SharingRunnerAuto), `how the MPS and nvidia-smi commands run: "auto" records them without running on a fake machine and runs them otherwise, "exec" always runs them, "fake" never does`)
	str(&cfg.FakeMIGNodes, "fake-mig-nodes", "TIERRA_FAKE_MIG_NODES", "", `DEMO ONLY, fake machines only: a label selector (e.g. tierra.dev/tier=inference); on a node it matches, the fake GPUs are put into MIG mode at start, as an admin would on an inference node`)
	qps, burst := strconv.Itoa(plugin.DefaultQPS), strconv.Itoa(plugin.DefaultBurst)
	var qpsS, burstS string
	str(&qpsS, "kube-api-qps", "TIERRA_KUBE_API_QPS", qps, "API requests per second; each prepare reads its claim (namespaces come from a watch), so keep it above the prepare rate")
	str(&burstS, "kube-api-burst", "TIERRA_KUBE_API_BURST", burst, "API request burst")
	var gcS string
	str(&gcS, "claim-gc-interval", "TIERRA_CLAIM_GC_INTERVAL", plugin.DefaultClaimGCInterval.String(), "how often to check prepared claims against the API and unprepare those deleted, re-created or deallocated there in two passes in a row (the kubelet never unprepares a force-deleted claim); the first check runs 30s after start; negative (e.g. -1s) disables it")
	var fsyncS string
	str(&fsyncS, "checkpoint-fsync", "TIERRA_CHECKPOINT_FSYNC", "false", "fsync every checkpoint write; not needed for safety: records are tied to the boot id, so a host crash (a reboot) makes them stale anyway, and writes are atomic against a plugin crash")
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	ours := flag.NewFlagSet("tierra-kubelet-plugin", flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) { ours.Var(f.Value, f.Name, f.Usage) })
	klogFlags.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	fs.Usage = func() { usage(out, ours, klogFlags) }
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	q, err := strconv.ParseFloat(qpsS, 32)
	if err != nil {
		return cfg, fmt.Errorf("--kube-api-qps %q: %w", qpsS, err)
	}
	if cfg.Burst, err = strconv.Atoi(burstS); err != nil {
		return cfg, fmt.Errorf("--kube-api-burst %q: %w", burstS, err)
	}
	cfg.QPS = float32(q)
	cfg.SharingRunner = plugin.SharingRunner(runnerS)
	if cfg.ClaimGCInterval, err = time.ParseDuration(gcS); err != nil {
		return cfg, fmt.Errorf("--claim-gc-interval %q: want a duration such as 5m, or a negative one to disable: %w", gcS, err)
	}
	if cfg.CheckpointFsync, err = strconv.ParseBool(fsyncS); err != nil {
		return cfg, fmt.Errorf("--checkpoint-fsync %q: %w", fsyncS, err)
	}
	if cfg.IdleThreshold, err = strconv.ParseFloat(idleS, 64); err != nil || cfg.IdleThreshold <= 0 || cfg.IdleThreshold > 1 {
		return cfg, fmt.Errorf("--idle-threshold %q: want an SM share greater than 0 and at most 1, such as 0.05", idleS)
	}
	if cfg.IdleWindow, err = time.ParseDuration(idleWindowS); err != nil || cfg.IdleWindow <= 0 {
		return cfg, fmt.Errorf("--idle-window %q: want a positive duration such as 2h", idleWindowS)
	}
	if cfg.UsageInterval, err = time.ParseDuration(usageS); err != nil || cfg.UsageInterval <= 0 {
		return cfg, fmt.Errorf("--usage-interval %q: want a positive duration such as 1m", usageS)
	}
	return cfg, cfg.Validate()
}

// usage explains the plugin, then its own flags, then klog's logging flags.
func usage(out io.Writer, ours, logging *flag.FlagSet) {
	fmt.Fprint(out, `tierra-kubelet-plugin is the node half of Tierra, the DRA driver gpu.tierra.dev.

It registers with the kubelet, publishes this node's GPUs as ResourceSlices
(shaped by the cluster's TierPolicy: whole GPUs, dynamic MIG slices, or
soft-shared GPUs with memory/compute capacity), and prepares each allocated
ResourceClaim: exclusive compute mode, a MIG instance at the allocated
placement, an MPS daemon or a time-slice interval, and a per-claim CDI spec.
Every flag can also be set by the environment variable named in its help.

Usage: tierra-kubelet-plugin --node-name NODE [flags]
       tierra-kubelet-plugin mps-daemon --help   (the MPS daemon pods' main process)

Flags:
`)
	ours.SetOutput(out)
	ours.PrintDefaults()
	fmt.Fprintln(out, "\nLogging flags (klog):")
	logging.SetOutput(out)
	logging.PrintDefaults()
}
