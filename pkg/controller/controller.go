package controller

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	resourcelisters "k8s.io/client-go/listers/resource/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/metrics"
	"github.com/tierra-gpu/tierra/pkg/tiers"
	"github.com/tierra-gpu/tierra/pkg/webhook"
)

// queueKey is the queue's only key: every event leads to one full sync.
const queueKey = "sync"

// Controller keeps one TierPolicy's classes and status in sync.
type Controller struct {
	cfg      Config
	kube     kubernetes.Interface
	dyn      dynamic.Interface
	policies cache.GenericLister
	classes  resourcelisters.DeviceClassLister
	slices   resourcelisters.ResourceSliceLister
	claims   resourcelisters.ResourceClaimLister
	// namespaces is set only when metrics are served (their tenants).
	namespaces corelisters.NamespaceLister
	stranded   *strandedModel
	queue      workqueue.TypedRateLimitingInterface[string]
	synced     []cache.InformerSynced
	start      []func(stop <-chan struct{})
	now        func() time.Time
}

// Run connects with cfg and runs the controller until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("tierra-controller config: %w", err)
	}
	rc, err := cfg.restConfig()
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	c := New(cfg, kube, dyn)
	if err := c.serveMetrics(ctx); err != nil {
		return err
	}
	if cfg.WebhookAddr == "" {
		return c.Run(ctx)
	}
	return runWithWebhook(ctx, c, webhook.Options{Addr: cfg.WebhookAddr, CertDir: cfg.WebhookCertDir, Classes: classGetter{kube}})
}

// New wires informers for the policy, the managed DeviceClasses,
// ResourceSlices and ResourceClaims; Run starts them. New fills in cfg's
// defaults but does not validate it: the package's Run does (Validate).
func New(cfg Config, kube kubernetes.Interface, dyn dynamic.Interface) *Controller {
	cfg.Default()
	c := &Controller{
		cfg: cfg, kube: kube, dyn: dyn, now: time.Now, stranded: newStrandedModel(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: FieldManager}),
	}
	now := func(any) { c.queue.Add(queueKey) }
	later := func(any) { c.queue.AddAfter(queueKey, c.cfg.StatusDelay) }

	dynFactory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, cfg.Resync, "", nil)
	pol := dynFactory.ForResource(v1alpha1.TierPolicyResource)
	c.policies = pol.Lister()
	c.watch(pol.Informer(), now)
	c.start = append(c.start, dynFactory.Start)

	managed := informers.NewSharedInformerFactoryWithOptions(kube, cfg.Resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = tiers.LabelManagedBy + "=" + tiers.ManagedBy
		}))
	classes := managed.Resource().V1().DeviceClasses()
	c.classes = classes.Lister()
	c.watch(classes.Informer(), now)
	c.start = append(c.start, managed.Start)

	all := informers.NewSharedInformerFactory(kube, cfg.Resync)
	rs, claims := all.Resource().V1().ResourceSlices(), all.Resource().V1().ResourceClaims()
	c.slices, c.claims = rs.Lister(), claims.Lister()
	c.watch(rs.Informer(), later)
	c.watch(claims.Informer(), later)
	if cfg.MetricsAddr != "" {
		ns := all.Core().V1().Namespaces()
		c.namespaces = ns.Lister()
		c.synced = append(c.synced, ns.Informer().HasSynced)
	}
	c.start = append(c.start, all.Start)
	return c
}

// serveMetrics serves the registry with the controller's collector on
// MetricsAddr until ctx ends; an empty address serves nothing.
func (c *Controller) serveMetrics(ctx context.Context) error {
	if c.cfg.MetricsAddr == "" {
		return nil
	}
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewControllerCollector(c))
	addr, err := metrics.Serve(ctx, c.cfg.MetricsAddr, reg)
	if err != nil {
		return err
	}
	if c.cfg.OnMetricsServing != nil {
		c.cfg.OnMetricsServing(addr)
	}
	return nil
}

func (c *Controller) watch(inf cache.SharedIndexInformer, enqueue func(any)) {
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	c.synced = append(c.synced, inf.HasSynced)
}

// Run starts the informers and one worker, and blocks until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx)
	logger.Info("Starting tierra-controller", "policy", c.cfg.PolicyName, "resync", c.cfg.Resync)
	if err := c.startInformers(ctx); err != nil {
		return err
	}
	c.queue.Add(queueKey)
	go wait.UntilWithContext(ctx, c.worker, time.Second)
	<-ctx.Done()
	logger.Info("Stopping tierra-controller")
	return nil
}

func (c *Controller) worker(ctx context.Context) {
	for c.processNext(ctx) {
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.Sync(ctx); err != nil {
		klog.FromContext(ctx).Error(err, "Sync failed, retrying", "policy", c.cfg.PolicyName)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

func (c *Controller) startInformers(ctx context.Context) error {
	for _, start := range c.start {
		start(ctx.Done())
	}
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced...) {
		return fmt.Errorf("wait for informer caches: %w", context.Cause(ctx))
	}
	return nil
}
