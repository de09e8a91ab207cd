// Command tierra-kubelet-plugin is Tierra's DRA kubelet plugin for driver
// gpu.tierra.dev: flags → plugin.Config → plugin.Run.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tierra-gpu/tierra/internal/cli"
	"github.com/tierra-gpu/tierra/pkg/plugin"
)

const usage = `tierra-kubelet-plugin is the node half of Tierra, the DRA driver gpu.tierra.dev.

It registers with the kubelet, publishes this node's GPUs as ResourceSlices
(shaped by the cluster's TierPolicy: whole GPUs, dynamic MIG slices, or
soft-shared GPUs with memory/compute capacity), and prepares each allocated
ResourceClaim: exclusive compute mode, a MIG instance at the allocated
placement, an MPS daemon or a time-slice interval, and a per-claim CDI spec.

Usage: tierra-kubelet-plugin --node-name NODE [flags]
       tierra-kubelet-plugin mps-daemon --help   (the MPS daemon pods' main process)

`

func main() {
	if len(os.Args) > 1 && os.Args[1] == mpsDaemonCommand {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err := runMPSDaemon(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		cli.Exit("tierra-kubelet-plugin "+mpsDaemonCommand, err)
	}
	cli.Main("tierra-kubelet-plugin", os.Args[1:], parse, plugin.Run)
}

// parse reads flags, each bound to its TIERRA_* environment variable, into a
// validated plugin.Config.
func parse(fs *cli.FlagSet, args []string) (plugin.Config, error) {
	fs.SetHeader(usage)
	var cfg plugin.Config
	fs.String(&cfg.NodeName, "node-name", "TIERRA_NODE_NAME", "", "name of this node: the pool the plugin publishes and prepares for; required")
	fs.String(&cfg.Machine, "machine", "TIERRA_MACHINE", "", `GPUs to drive: "" for the real NVML, "fake:<name>" for a fake machine (dgxa100, dgxh100, dgxh200, dgxb200, l4x4, mixed)`)
	bindPaths(fs, &cfg)
	fs.String(&cfg.Kubeconfig, "kubeconfig", "TIERRA_KUBECONFIG", "", "kubeconfig file; empty means the in-cluster service account")
	fs.String(&cfg.TierPolicy, "tier-policy", "TIERRA_TIER_POLICY", plugin.DefaultTierPolicy, "name of the TierPolicy (tierra.dev/v1alpha1) that decides how GPUs are published")
	fs.String(&cfg.TierPolicyFile, "tier-policy-file", "TIERRA_TIER_POLICY_FILE", "", "TierPolicy YAML used when the CRD or the named object is absent; without it the plugin fails then")
	fs.String(&cfg.PodUID, "pod-uid", "TIERRA_POD_UID", "", "UID of the plugin's own pod (downward API); set it so a DaemonSet rollout can run the new pod beside the old one without a gap in prepare")
	bindSharing(fs, &cfg)
	fs.String(&cfg.Namespace, "namespace", "TIERRA_NAMESPACE", "", "the plugin's namespace (downward API): where the MPS daemon pods go")
	fs.String(&cfg.MetricsAddress, "metrics-address", "TIERRA_METRICS_ADDRESS", plugin.DefaultMetricsAddress, "host:port of the Prometheus /metrics endpoint (requests, errors, prepared devices, GPU health, claim-device info); empty serves none")
	bindUsage(fs, &cfg)
	fs.String(&cfg.FakeMIGNodes, "fake-mig-nodes", "TIERRA_FAKE_MIG_NODES", "", `DEMO ONLY, fake machines only: a label selector (e.g. tierra.dev/tier=inference); on a node it matches, the fake GPUs are put into MIG mode at start, as an admin would on an inference node`)
	var qps float64
	fs.Float(&qps, "kube-api-qps", "TIERRA_KUBE_API_QPS", plugin.DefaultQPS, "API requests per second; each prepare reads its claim (namespaces come from a watch), so keep it above the prepare rate")
	fs.Int(&cfg.Burst, "kube-api-burst", "TIERRA_KUBE_API_BURST", plugin.DefaultBurst, "API request burst")
	fs.Duration(&cfg.ClaimGCInterval, "claim-gc-interval", "TIERRA_CLAIM_GC_INTERVAL", plugin.DefaultClaimGCInterval, "how often to check prepared claims against the API and unprepare those deleted, re-created or deallocated there in two passes in a row (the kubelet never unprepares a force-deleted claim); the first check runs 30s after start; negative (e.g. -1s) disables it")
	fs.Bool(&cfg.CheckpointFsync, "checkpoint-fsync", "TIERRA_CHECKPOINT_FSYNC", false, "fsync every checkpoint write; not needed for safety: records are tied to the boot id, so a host crash (a reboot) makes them stale anyway, and writes are atomic against a plugin crash")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.QPS = float32(qps)
	return cfg, cfg.Validate()
}

func bindPaths(fs *cli.FlagSet, cfg *plugin.Config) {
	fs.String(&cfg.StateDir, "state-dir", "TIERRA_STATE_DIR", plugin.DefaultStateDir, "directory of the claim checkpoint; must survive plugin restarts")
	fs.String(&cfg.CDIDir, "cdi-dir", "TIERRA_CDI_DIR", plugin.DefaultCDIDir, "directory the container runtime reads CDI specs from; one spec per prepared claim")
	fs.String(&cfg.PluginDataDir, "plugin-data-dir", "TIERRA_PLUGIN_DATA_DIR", plugin.DefaultPluginDataDir, "directory of the DRA gRPC socket (dra.sock) the kubelet calls")
	fs.String(&cfg.RegistrarDir, "registrar-dir", "TIERRA_REGISTRAR_DIR", plugin.DefaultRegistrarDir, "kubelet plugin registration directory, where the registration socket goes")
}

func bindSharing(fs *cli.FlagSet, cfg *plugin.Config) {
	fs.String(&cfg.MPSControlCommand, "mps-control-command", "TIERRA_MPS_CONTROL_COMMAND", plugin.DefaultMPSControlCommand, "command that starts (-d) and stops (quit) a GPU's MPS control daemon; a name on PATH or a path")
	fs.String(&cfg.NvidiaSMICommand, "nvidia-smi-command", "TIERRA_NVIDIA_SMI_COMMAND", plugin.DefaultNvidiaSMICommand, "nvidia-smi, which sets the time-slice of time-sliced GPUs (compute-policy --set-timeslice); a name on PATH or a path")
	fs.String(&cfg.MPSDaemonImage, "mps-daemon-image", "TIERRA_MPS_DAEMON_IMAGE", "", "image of the MPS daemon pods (this plugin's image); when set, each GPU's MPS control daemon runs in a pod of its own that outlives the plugin, otherwise the plugin runs it itself")
	fs.String(&cfg.MPSDaemonCommand, "mps-daemon-command", "TIERRA_MPS_DAEMON_COMMAND", plugin.DefaultMPSDaemonCommand, "the MPS daemon's supervisor in --mps-daemon-image (words split on spaces)")
	fs.String(&cfg.MPSDaemonPriorityClass, "mps-daemon-priority-class", "TIERRA_MPS_DAEMON_PRIORITY_CLASS", plugin.DefaultMPSDaemonPriorityClass, "PriorityClass of the MPS daemon pods; empty for none")
	fs.String(&cfg.MPSDaemonRuntimeClass, "mps-daemon-runtime-class", "TIERRA_MPS_DAEMON_RUNTIME_CLASS", "", "RuntimeClass of the MPS daemon pods that injects the NVIDIA driver (e.g. nvidia); empty for the node's default")
	runner := (*string)(&cfg.SharingRunner)
	fs.String(runner, "sharing-runner", "TIERRA_SHARING_RUNNER", string(plugin.SharingRunnerAuto), `how the MPS and nvidia-smi commands run: "auto" records them without running on a fake machine and runs them otherwise, "exec" always runs them, "fake" never does`)
}

func bindUsage(fs *cli.FlagSet, cfg *plugin.Config) {
	fs.String(&cfg.ProcRoot, "proc-root", "TIERRA_PROC_ROOT", plugin.DefaultProcRoot, "the host's /proc as the plugin sees it (e.g. /host/proc, mounted read-only): NVML reports host PIDs, whose cgroups name their pods; per-pod GPU use and idle/oversized claims need it and the metrics; empty turns them off")
	fs.Float(&cfg.IdleThreshold, "idle-threshold", "TIERRA_IDLE_THRESHOLD", plugin.DefaultIdleThreshold, "SM share (above 0, at most 1) under which a GPU counts as unused; a claim whose GPUs all stay under it for --idle-window is idle (metric, and a Warning GPUIdle event on its pods)",
		func(x float64) error {
			if x <= 0 || x > 1 {
				return errors.New("want an SM share greater than 0 and at most 1, such as 0.05")
			}
			return nil
		})
	fs.Duration(&cfg.IdleWindow, "idle-window", "TIERRA_IDLE_WINDOW", plugin.DefaultIdleWindow, "how long a claim's GPUs must stay under --idle-threshold for the claim to be idle; also how long a claim is watched before a smaller device is suggested (a Normal GPUOversized event)", positive)
	fs.Duration(&cfg.UsageInterval, "usage-interval", "TIERRA_USAGE_INTERVAL", plugin.DefaultUsageInterval, "time between two readings of the GPUs' per-process use for idle and oversized claims", positive)
}

func positive(d time.Duration) error {
	if d <= 0 {
		return errors.New("want a positive duration such as 2h or 1m")
	}
	return nil
}
