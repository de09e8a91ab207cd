// Package plugin is Tierra's kubelet plugin: it publishes this node's
// ResourceSlices (pkg/slices) and serves the kubelet's DRA gRPC API through
// k8s.io/dynamic-resource-allocation/kubeletplugin, preparing claims with
// pkg/prepare.
package plugin

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/sharing"
	"github.com/tierra-gpu/tierra/pkg/usage"
)

// Defaults of Config.
const (
	DefaultPluginDataDir = "/var/lib/kubelet/plugins/" + v1alpha1.DriverName
	DefaultRegistrarDir  = "/var/lib/kubelet/plugins_registry"
	DefaultCDIDir        = "/var/run/cdi"
	DefaultStateDir      = "/var/lib/tierra"
	DefaultTierPolicy    = "default"
	// DefaultQPS and DefaultBurst leave room for 200 prepares a second,
	// each of which reads its claim.
	DefaultQPS   = 500
	DefaultBurst = 1000
	// The default MPS control and nvidia-smi commands, found on PATH.
	DefaultMPSControlCommand = sharing.DefaultMPSControlCommand
	DefaultNvidiaSMICommand  = sharing.DefaultNvidiaSMICommand
	// DefaultMPSDaemonCommand runs the MPS daemon's supervisor in the
	// plugin's image.
	DefaultMPSDaemonCommand = "/usr/bin/tierra-kubelet-plugin mps-daemon"
	// DefaultMPSDaemonPriorityClass keeps the daemons of running claims
	// from being preempted or evicted before them.
	DefaultMPSDaemonPriorityClass = "system-node-critical"
	// DefaultMetricsAddress is where the plugin's binary serves /metrics.
	DefaultMetricsAddress = ":8080"
	// DefaultProcRoot is where the plugin's binary reads the host's
	// processes (their cgroups name their pods).
	DefaultProcRoot = "/proc"
	// DefaultIdleThreshold and DefaultIdleWindow: a claim whose GPUs all
	// stay under 5 % SM use for 2 hours is idle.
	DefaultIdleThreshold = usage.DefaultIdleThreshold
	DefaultIdleWindow    = usage.DefaultIdleWindow
	// DefaultUsageInterval is the time between two readings of the usage
	// monitor.
	DefaultUsageInterval = time.Minute
)

// SharingRunner says how the plugin runs the MPS control daemon and
// nvidia-smi.
type SharingRunner string

const (
	// SharingRunnerAuto records the commands on a fake machine and runs
	// them on real GPUs.
	SharingRunnerAuto SharingRunner = "auto"
	// SharingRunnerExec runs them as host processes, also on a fake
	// machine (the crash test gives stand-ins that keep state on disk).
	SharingRunnerExec SharingRunner = "exec"
	// SharingRunnerFake records them in memory and runs nothing.
	SharingRunnerFake SharingRunner = "fake"
)

// SharingRunners are the allowed SharingRunner values.
var SharingRunners = []SharingRunner{SharingRunnerAuto, SharingRunnerExec, SharingRunnerFake}

// Config is everything the plugin is started with.
type Config struct {
	// NodeName is the node this plugin runs on (its pool name).
	NodeName string
	// Machine is "" for the real NVML or "fake:<name>" (pkg/nvgpu).
	Machine string
	// StateDir holds the checkpoint (StateDir/checkpoint).
	StateDir string
	// CDIDir is where per-claim CDI specs are written.
	CDIDir string
	// PluginDataDir holds the DRA socket; RegistrarDir the registration socket.
	PluginDataDir string
	RegistrarDir  string
	// Kubeconfig is a kubeconfig file; empty means in-cluster.
	Kubeconfig string
	// QPS and Burst limit the plugin's API client.
	QPS   float32
	Burst int
	// TierPolicy names the TierPolicy object to publish by.
	TierPolicy string
	// TierPolicyFile is used when the TierPolicy CRD or object is absent.
	TierPolicyFile string
	// BootID overrides the host's boot id (tests); empty reads the host's.
	BootID string
	// PodUID is the plugin pod's UID. When set, the plugin registers under
	// a per-pod socket name (kubeletplugin.RollingUpdate) so a new pod of a
	// DaemonSet rollout can serve beside the old one: the kubelet switches
	// to the newest registration and prepare never stops on the node.
	PodUID string
	// CheckpointFsync fsyncs every checkpoint write. Off by default:
	// records are tied to the boot id, so only a plugin crash must be
	// survived, and atomic renames do that (checkpoint.SurviveProcessCrash).
	CheckpointFsync bool
	// MPSControlCommand and NvidiaSMICommand are the commands the sharing
	// runner execs for MPS and time-slicing.
	MPSControlCommand string
	NvidiaSMICommand  string
	// SharingRunner chooses how those commands run; "" means auto.
	SharingRunner SharingRunner
	// MPSDaemonImage, when set, runs each GPU's MPS control daemon in a
	// pod of its own (a Deployment in Namespace, pinned to the node) from
	// this image, so that it outlives the plugin; MPSDaemonCommand is its
	// supervisor there (split on spaces). Unset, the plugin runs the
	// daemons itself through the sharing runner.
	MPSDaemonImage   string
	MPSDaemonCommand string
	// MPSDaemonPriorityClass and MPSDaemonRuntimeClass are those of the
	// daemon pods ("" for none).
	MPSDaemonPriorityClass string
	MPSDaemonRuntimeClass  string
	// Namespace is the plugin's namespace (the daemon pods go there).
	Namespace string
	// FakeMIGNodes is a label selector (DEMO ONLY, fake machines only): on
	// a node it matches, every MIG-capable fake GPU is put into MIG mode
	// before discovery, as an admin would on an inference node. It lets one
	// DaemonSet (kind) give its inference nodes MIG.
	FakeMIGNodes string
	// ClaimGCInterval is the time between two passes that unprepare claims
	// deleted from the API while prepared (claimGC); 0 means
	// DefaultClaimGCInterval, negative disables them.
	ClaimGCInterval time.Duration
	// MetricsAddress is where /metrics is served (host:port; port 0 picks
	// one, Driver.MetricsAddress says which); empty serves none.
	MetricsAddress string
	// ProcRoot is the host's /proc as the plugin sees it (NVML reports host
	// PIDs; each one's cgroup names its pod). Per-pod GPU use, idle and
	// oversized claims are on when it is set and the metrics are.
	ProcRoot string
	// IdleThreshold is the SM share (0-1] under which a GPU counts as
	// unused; IdleWindow how long every GPU of a claim must stay so for the
	// claim to be idle (a Warning GPUIdle event on its pods); 0 means the
	// defaults.
	IdleThreshold float64
	IdleWindow    time.Duration
	// UsageInterval is the time between two readings of the GPU use for
	// idle and oversized claims; 0 means DefaultUsageInterval.
	UsageInterval time.Duration
}

// Default fills in unset fields.
func (c *Config) Default() {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&c.StateDir, DefaultStateDir)
	set(&c.CDIDir, DefaultCDIDir)
	set(&c.PluginDataDir, DefaultPluginDataDir)
	set(&c.RegistrarDir, DefaultRegistrarDir)
	set(&c.TierPolicy, DefaultTierPolicy)
	set(&c.MPSControlCommand, DefaultMPSControlCommand)
	set(&c.NvidiaSMICommand, DefaultNvidiaSMICommand)
	set(&c.MPSDaemonCommand, DefaultMPSDaemonCommand)
	if c.SharingRunner == "" {
		c.SharingRunner = SharingRunnerAuto
	}
	if c.QPS == 0 {
		c.QPS = DefaultQPS
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	if c.ClaimGCInterval == 0 {
		c.ClaimGCInterval = DefaultClaimGCInterval
	}
	if c.IdleThreshold == 0 {
		c.IdleThreshold = DefaultIdleThreshold
	}
	if c.IdleWindow == 0 {
		c.IdleWindow = DefaultIdleWindow
	}
	if c.UsageInterval == 0 {
		c.UsageInterval = DefaultUsageInterval
	}
}

// Validate reports missing required settings.
func (c *Config) Validate() error {
	if c.NodeName == "" {
		return errors.New("node name is required (--node-name or TIERRA_NODE_NAME)")
	}
	if c.SharingRunner != "" && !slices.Contains(SharingRunners, c.SharingRunner) {
		return fmt.Errorf("sharing runner %q (--sharing-runner or TIERRA_SHARING_RUNNER): want auto, exec or fake", c.SharingRunner)
	}
	if c.MPSDaemonImage != "" && c.Namespace == "" {
		return errors.New("namespace is required with --mps-daemon-image: the MPS daemon pods go there (--namespace or TIERRA_NAMESPACE)")
	}
	if c.IdleThreshold < 0 || c.IdleThreshold > 1 {
		return fmt.Errorf("--idle-threshold (TIERRA_IDLE_THRESHOLD) %g: want an SM share greater than 0 and at most 1 (0.05 is 5 %%)", c.IdleThreshold)
	}
	if c.IdleWindow < 0 {
		return fmt.Errorf("--idle-window (TIERRA_IDLE_WINDOW) %s: want a positive duration such as 2h", c.IdleWindow)
	}
	if c.UsageInterval < 0 {
		return fmt.Errorf("usage interval %s: want a positive duration", c.UsageInterval)
	}
	if c.FakeMIGNodes != "" {
		if !nvgpu.IsFake(c.Machine) {
			return fmt.Errorf("--fake-mig-nodes (TIERRA_FAKE_MIG_NODES) is for fake machines only (--machine %s<name>), not %q",
				nvgpu.FakePrefix, c.Machine)
		}
		if _, err := labels.Parse(c.FakeMIGNodes); err != nil {
			return fmt.Errorf("--fake-mig-nodes (TIERRA_FAKE_MIG_NODES) %q: want a label selector such as tierra.dev/tier=inference: %w", c.FakeMIGNodes, err)
		}
	}
	return nil
}

// fakeMIG reports whether this node's fake GPUs go into MIG mode.
func (c *Config) fakeMIG(nodeLabels map[string]string) bool {
	if c.FakeMIGNodes == "" {
		return false
	}
	sel, err := labels.Parse(c.FakeMIGNodes)
	return err == nil && sel.Matches(labels.Set(nodeLabels))
}

func (c *Config) checkpointDir() string { return filepath.Join(c.StateDir, "checkpoint") }
