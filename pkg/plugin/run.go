package plugin

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/dynamic-resource-allocation/resourceslice"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/cdi"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/nvgpu"
	"github.com/tierra-gpu/tierra/pkg/prepare"
	"github.com/tierra-gpu/tierra/pkg/sharing"
)

// Deps are the plugin's connections to the world; Start fills in nil
// GPUs and Policy from the Config.
type Deps struct {
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// GPUs is the node's GPUs; nil opens Config.Machine (Stop closes it then).
	GPUs nvgpu.Interface
	// Policy overrides reading the TierPolicy (tests).
	Policy *v1alpha1.TierPolicy
	// Runner runs nvidia-smi and the MPS daemon; nil means the one
	// Config.SharingRunner names.
	Runner sharing.Runner
	// Observe, when set, is told how long each prepare step takes
	// (benchmarks).
	Observe prepare.Observer
	// Clock drives the periodic pass over claims deleted from the API; nil
	// means the real clock.
	Clock clock.Clock
	// Metrics is the registry the plugin's collectors go into (tests pass
	// their own and gather it). Nil: one from metrics.NewRegistry when
	// Config.MetricsAddress is set, else no metrics at all.
	Metrics *prometheus.Registry
	// Collectors are registered beside the plugin's own (e.g. per-pod GPU
	// use), into the same registry.
	Collectors []prometheus.Collector
}

// Run starts the plugin with clients built from the Config and serves
// until ctx is cancelled.
func Run(ctx context.Context, cfg Config) error {
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return err
	}
	rest, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	rest.QPS, rest.Burst = cfg.QPS, cfg.Burst
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rest)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	var reg *prometheus.Registry
	if cfg.MetricsAddress != "" {
		reg = metrics.NewRegistry()
	}
	d, err := Start(ctx, cfg, Deps{Client: client, Dynamic: dyn, Metrics: reg})
	if err != nil && ctx.Err() != nil {
		// Asked to stop while starting (a rollout replaced the pod at
		// once): Start has undone its work; that is a clean exit.
		klog.FromContext(ctx).Info("Stopped while starting", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		klog.FromContext(ctx).Info("Stopping")
		return d.Stop()
	case <-d.Failed():
		klog.FromContext(ctx).Error(d.Err(), "Stopping on a fatal error")
		return errors.Join(d.Err(), d.Stop())
	}
}

// Start builds the node's devices, opens the checkpoint and CDI directory,
// registers with the kubelet and publishes the node's ResourceSlices. It
// republishes them when the node's labels, the TierPolicy or the hardware
// change, until Stop.
func Start(ctx context.Context, cfg Config, deps Deps) (_ *Driver, finalErr error) {
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "node", cfg.NodeName)
	ctx, cancel := context.WithCancel(klog.NewContext(ctx, logger))
	d := &Driver{cancel: cancel, failed: make(chan struct{})}
	defer func() {
		if finalErr != nil {
			finalErr = errors.Join(finalErr, d.Stop())
		}
	}()
	reg, err := d.startMetrics(ctx, cfg, deps)
	if err != nil {
		return nil, err
	}
	node, err := deps.Client.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", cfg.NodeName, err)
	}
	policy, fromAPI := deps.Policy, false
	if policy == nil {
		if policy, fromAPI, err = loadPolicy(ctx, deps.Dynamic, &cfg); err != nil {
			return nil, err
		}
	}
	sharer, err := newSharer(cfg, deps.Client, node, deps.Runner)
	if err != nil {
		return nil, err
	}
	gpus := deps.GPUs
	if gpus == nil {
		if gpus, err = nvgpu.New(ctx, nvgpu.Options{Machine: cfg.Machine}); err != nil {
			return nil, fmt.Errorf("open GPUs: %w", err)
		}
		d.close = gpus.Close
	}
	if cfg.fakeMIG(node.Labels) {
		if _, err := nvgpu.EnableMIG(ctx, gpus); err != nil {
			return nil, fmt.Errorf("enable MIG on fake machine (--fake-mig-nodes): %w", err)
		}
		logger.Info("Fake machine in MIG mode", "selector", cfg.FakeMIGNodes)
	}
	d.pub = &publisher{nodeName: cfg.NodeName, gpus: gpus, labels: node.Labels, policy: policy, metrics: d.metrics,
		warn: nodeWarner(deps.Client, node)}
	resources, inv, machine, err := d.pub.build(ctx)
	if err != nil {
		return nil, err
	}
	namespaces, stopNamespaces := watchNamespaces(ctx, deps.Client)
	d.stops = append(d.stops, stopNamespaces)
	if err := d.openState(ctx, cfg, deps, node, prepare.Options{NodePool: inv, Hardware: reasonHardware{gpus}, Caps: gpus,
		Policy: policy, Namespaces: namespaces, Sharer: reasonSharer{sharer}, Observe: deps.Observe}, machine); err != nil {
		return nil, err
	}
	d.metrics.SetState(d.metricsState(cfg.NodeName, sharer))
	d.pub.prep = d.prep
	d.restoreHealth(ctx, cfg.StateDir, deps.Client, node, machine)
	if err := d.serve(ctx, cfg, deps.Client, d.pub.tainted(ctx, resources)); err != nil {
		return nil, err
	}
	d.pub.serving(ctx, d.helper)
	if err := d.watch(ctx, cfg, deps, fromAPI); err != nil {
		return nil, err
	}
	d.startClaimGC(ctx, cfg, deps, node)
	if err := d.startUsage(ctx, usageInput{cfg: cfg, reg: reg, gpus: gpus, client: deps.Client, clock: deps.Clock,
		policy: policy, node: node, machine: machine}); err != nil {
		return nil, err
	}
	logger.Info("Kubelet plugin started", "gpus", len(machine.GPUs), "tierPolicy", policy.Name)
	return d, nil
}

// openState takes the state lock exclusive (a plugin of the previous
// rollout may still be preparing), opens the checkpoint and the CDI
// directory, deletes the CDI specs of claims a reboot made stale, builds
// the Preparer and reconciles, then lets prepares in.
func (d *Driver) openState(ctx context.Context, cfg Config, deps Deps, node *corev1.Node, opts prepare.Options, machine inventory.Machine) (finalErr error) {
	var err error
	if d.lock, err = checkpoint.OpenStateLock(cfg.StateDir); err != nil {
		return err
	}
	unlock, err := d.lock.Exclusive()
	if err != nil {
		return err
	}
	defer func() { finalErr = errors.Join(finalErr, unlock()) }()
	durability := checkpoint.SurviveProcessCrash
	if cfg.CheckpointFsync {
		durability = checkpoint.SurviveHostCrash
	}
	store, report, err := checkpoint.Open(ctx, checkpoint.Options{Dir: cfg.checkpointDir(), BootID: cfg.BootID, Durability: durability})
	if err != nil {
		return fmt.Errorf("open checkpoint: %w", err)
	}
	writer, err := cdi.New(cdi.Options{Dir: cfg.CDIDir})
	if err != nil {
		return fmt.Errorf("open CDI directory: %w", err)
	}
	logger := klog.FromContext(ctx)
	d.metrics.CheckpointQuarantined(len(report.Quarantined))
	for _, q := range report.Quarantined {
		logger.Info("Quarantined a corrupt checkpoint record", "file", q)
		nodeEvent(ctx, deps.Client, node, corev1.EventTypeWarning, ReasonCheckpointQuarantined,
			fmt.Sprintf("Moved aside a corrupt checkpoint record as %s; the claim it held is no longer tracked", q))
	}
	for _, c := range report.Stale {
		if err := writer.Delete(c.UID); err != nil {
			return fmt.Errorf("delete CDI spec of stale claim %s: %w", c.UID, err)
		}
		logger.Info("Dropped a claim prepared before the last reboot", "claim", klog.KRef(c.Namespace, c.Name), "uid", c.UID)
	}
	d.store = store
	opts.Store, opts.CDI, opts.Locks = reasonStore{store}, writer, reasonStore{store}
	if d.prep, err = prepare.New(opts); err != nil {
		return err
	}
	reconcile(ctx, d.prep, machine, writer, report.Quarantined)
	return nil
}

// reconcile runs prepare's startup reconcile. A failure is logged, not
// fatal: a leftover that cannot be removed now must not keep the node from
// serving claims, and the next start tries again.
func reconcile(ctx context.Context, prep *prepare.Preparer, machine inventory.Machine, writer *cdi.Writer, quarantined []string) {
	logger := klog.FromContext(ctx)
	specs, err := writer.List()
	if err == nil {
		err = prep.Reconcile(ctx, prepare.ReconcileInput{Machine: machine, CDISpecs: specs, Quarantined: quarantined})
	}
	if err != nil {
		logger.Error(err, "Startup reconcile incomplete")
	}
}

func newSharer(cfg Config, client kubernetes.Interface, node *corev1.Node, runner sharing.Runner) (*sharing.Manager, error) {
	if runner == nil {
		runner = configRunner(cfg)
	}
	opts := sharing.Options{Runner: runner, MPSDir: filepath.Join(cfg.StateDir, "mps"),
		MPSControlCommand: cfg.MPSControlCommand, NvidiaSMICommand: cfg.NvidiaSMICommand}
	if cfg.MPSDaemonImage != "" {
		pods, err := sharing.NewPodDaemons(sharing.PodOptions{
			Client: client, Namespace: cfg.Namespace, Node: node.Name, NodeUID: string(node.UID),
			Image: cfg.MPSDaemonImage, SupervisorCommand: strings.Fields(cfg.MPSDaemonCommand),
			ControlCommand: cfg.MPSControlCommand, PriorityClassName: cfg.MPSDaemonPriorityClass,
			RuntimeClassName: cfg.MPSDaemonRuntimeClass,
		})
		if err != nil {
			return nil, err
		}
		opts.Daemons = pods
	}
	m, err := sharing.New(opts)
	if err != nil {
		return nil, fmt.Errorf("sharing: %w", err)
	}
	return m, nil
}

// configRunner is the Runner cfg.SharingRunner asks for (validated).
func configRunner(cfg Config) sharing.Runner {
	switch cfg.SharingRunner {
	case SharingRunnerExec:
		return sharing.ExecRunner{}
	case SharingRunnerFake:
		return &sharing.FakeRunner{}
	}
	if nvgpu.IsFake(cfg.Machine) {
		return &sharing.FakeRunner{}
	}
	return sharing.ExecRunner{}
}

// serve registers with the kubelet, serves its DRA API and publishes the
// node's ResourceSlices.
func (d *Driver) serve(ctx context.Context, cfg Config, client kubernetes.Interface, resources resourceslice.DriverResources) error {
	opts := []kubeletplugin.Option{
		kubeletplugin.DriverName(v1alpha1.DriverName),
		kubeletplugin.NodeName(cfg.NodeName),
		kubeletplugin.KubeClient(client),
		kubeletplugin.PluginDataDirectoryPath(cfg.PluginDataDir),
		kubeletplugin.RegistrarDirectoryPath(cfg.RegistrarDir),
		// pkg/prepare locks per GPU; the helper's global lock is not needed.
		kubeletplugin.Serialize(false),
	}
	if cfg.PodUID != "" {
		opts = append(opts, kubeletplugin.RollingUpdate(types.UID(cfg.PodUID)))
	}
	var err error
	d.helper, err = kubeletplugin.Start(ctx, d, opts...)
	if err != nil {
		return fmt.Errorf("start kubelet plugin: %w", err)
	}
	if err := d.helper.PublishResources(ctx, resources); err != nil {
		return fmt.Errorf("publish ResourceSlices: %w", err)
	}
	return nil
}
