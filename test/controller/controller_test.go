// Package controller_test runs tierra-controller in-process against the real
// control plane of test/cluster.
package controller_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
	"github.com/tierra-gpu/tierra/pkg/controller"
	"github.com/tierra-gpu/tierra/pkg/tiers"
)

const nodeName = "gpu-node-1"

var managedBy = tiers.LabelManagedBy + "=" + tiers.ManagedBy

// TestControllerFollowsPolicy creates the example TierPolicy, then drops a
// tier, publishes a node's slices, allocates a claim and finally makes the
// policy invalid, checking classes and status after each step.
func TestControllerFollowsPolicy(t *testing.T) {
	ctx, e := startEnv(t)
	c, cs, dyn := e.c, e.cs, e.dyn

	policy := v1alpha1.DefaultTierPolicy()
	createPolicy(ctx, t, dyn, policy)
	t0 := time.Now()
	runController(ctx, t, controller.Config{Kubeconfig: c.Kubeconfig()})
	classes := waitClasses(ctx, t, cs, "training", "inference", "dev")
	t.Logf("5 classes applied %s after the controller started", time.Since(t0).Round(time.Millisecond))
	assertSelectors(t, classes)
	waitReady(ctx, t, dyn, 3)

	t0 = updatePolicy(ctx, t, dyn, policy.Name, dropTier(v1alpha1.TierDev))
	waitClasses(ctx, t, cs, "training", "inference")
	t.Logf("dev class pruned %s after the policy update", time.Since(t0).Round(time.Millisecond))
	p := waitReady(ctx, t, dyn, 2)

	published := publishNode(ctx, t, cs, p)
	require.Positive(t, published[v1alpha1.TierTraining], "a DGX H200 without labels serves training")
	allocateClaim(ctx, t, cs)
	p = waitPolicy(ctx, t, dyn, policy.Name, "status never counted the slices and the claim", func(p *v1alpha1.TierPolicy) bool {
		return len(p.Status.Tiers) == 2 && p.Status.Tiers[0].DevicesAllocated == 1
	})
	for _, ts := range p.Status.Tiers {
		assert.Equal(t, published[ts.Name], ts.DevicesPublished, "tier %s devicesPublished", ts.Name)
	}
	assert.Equal(t, 100/published[v1alpha1.TierTraining], p.Status.Tiers[0].YieldPercent)

	before := listManaged(ctx, t, cs)
	// What the CRD's rules can say, the apiserver refuses outright.
	err := tryUpdatePolicy(ctx, t, dyn, policy.Name, func(s *v1alpha1.TierPolicySpec) {
		s.Tenants[0].AllowedTiers = append(s.Tenants[0].AllowedTiers, v1alpha1.TierDev)
	})
	require.ErrorContains(t, err, "allowedTiers must name tiers defined in spec.tiers")
	// What only Validate sees (a label selector the schema cannot check)
	// is reported as Ready=False, and the last good classes stay.
	updatePolicy(ctx, t, dyn, policy.Name, func(s *v1alpha1.TierPolicySpec) {
		s.Tiers[0].GPUs.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"not a key!": "x"}}
	})
	p = waitPolicy(ctx, t, dyn, policy.Name, "never Ready=False", func(p *v1alpha1.TierPolicy) bool {
		return apimeta.IsStatusConditionFalse(p.Status.Conditions, controller.ConditionReady)
	})
	cond := apimeta.FindStatusCondition(p.Status.Conditions, controller.ConditionReady)
	assert.Equal(t, controller.ReasonInvalidPolicy, cond.Reason)
	assert.Contains(t, cond.Message, "spec.tiers[0].gpus.nodeSelector")
	assert.Equal(t, p.Generation, p.Status.ObservedGeneration)
	time.Sleep(500 * time.Millisecond) // a wrong prune or apply would land by now
	assert.Equal(t, before, listManaged(ctx, t, cs), "an invalid policy must leave the classes untouched")
}

// runController runs the controller with cfg (a 100 ms status delay
// unless cfg sets one) until the test ends, then checks that Run returned
// no error. The returned channel is closed when Run returns.
func runController(ctx context.Context, t *testing.T, cfg controller.Config) <-chan struct{} {
	t.Helper()
	if cfg.StatusDelay == 0 {
		cfg.StatusDelay = 100 * time.Millisecond
	}
	logger, _ := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(klog.NewContext(ctx, logger))
	stopped := make(chan struct{})
	var runErr error
	go func() {
		defer close(stopped)
		runErr = controller.Run(ctx, cfg)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
		require.NoError(t, runErr)
	})
	return stopped
}

// waitClasses waits until the managed classes are exactly the tiers' and
// the two plain classes.
func waitClasses(ctx context.Context, t *testing.T, cs kubernetes.Interface, tierNames ...string) []resourceapi.DeviceClass {
	t.Helper()
	want := []string{tiers.ClassGPU, tiers.ClassMIG}
	for _, tier := range tierNames {
		want = append(want, tiers.ClassName(tier))
	}
	slices.Sort(want)
	var got []resourceapi.DeviceClass
	poll(ctx, t, "classes never became "+joined(want), func(ctx context.Context) (bool, error) {
		list, err := cs.ResourceV1().DeviceClasses().List(ctx, metav1.ListOptions{LabelSelector: managedBy})
		if err != nil {
			return false, err
		}
		got = list.Items
		names := classNames(got)
		slices.Sort(names)
		return slices.Equal(names, want), nil
	})
	return got
}

func assertSelectors(t *testing.T, classes []resourceapi.DeviceClass) {
	t.Helper()
	want := map[string]string{tiers.ClassGPU: tiers.GPUSelector, tiers.ClassMIG: tiers.MIGSelector}
	for _, tier := range []string{"training", "inference", "dev"} {
		want[tiers.ClassName(tier)] = tiers.TierSelector(tier)
	}
	for _, c := range classes {
		require.Len(t, c.Spec.Selectors, 1, c.Name)
		assert.Equal(t, want[c.Name], c.Spec.Selectors[0].CEL.Expression, c.Name)
		assert.Equal(t, controller.FieldManager, c.ManagedFields[0].Manager, c.Name)
	}
}

func waitReady(ctx context.Context, t *testing.T, dyn dynamic.Interface, tierCount int32) *v1alpha1.TierPolicy {
	t.Helper()
	return waitPolicy(ctx, t, dyn, "default", "policy never Ready", func(p *v1alpha1.TierPolicy) bool {
		return apimeta.IsStatusConditionTrue(p.Status.Conditions, controller.ConditionReady) &&
			p.Status.ObservedGeneration == p.Generation && p.Status.TierCount == tierCount &&
			len(p.Status.Tiers) == int(tierCount)
	})
}
