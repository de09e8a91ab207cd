package deploy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	resourceclient "k8s.io/client-go/kubernetes/typed/resource/v1"

	"github.com/tierra-gpu/tierra/pkg/inventory"
	"github.com/tierra-gpu/tierra/pkg/plan"
	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/tiers"
	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/stack"
)

// capacityNode is the kwok node whose shared L4s the claims land on.
const capacityNode = "gpu-l4"

// TestCapacityNames installs Tierra the way the e2e stack does (the demo's
// TierPolicy and tenants, the chart's admission policies) on a control
// plane with kwok, publishes a node of time-sliced L4s (the demo's dev tier)
// and proves that a claim asking for capacity by the unqualified name
// "memory", as upstream and NVIDIA examples spell it, is admitted,
// rewritten and allocated by the real kube-scheduler, directly and through
// a ResourceClaimTemplate; while a capacity name no device has is refused
// at admission with the names that exist.
func TestCapacityNames(t *testing.T) {
	ctx, cs := startStack(t)
	publishSharedNode(ctx, t, cs)
	claims := cs.ResourceV1().ResourceClaims("research")
	dev := tiers.ClassName("dev")
	waitCapacityPolicies(ctx, t, claims, dev)

	t.Run("unqualified memory is rewritten and allocated", func(t *testing.T) {
		claim := tierratest.MakeClaim("mem-20gi", "research").Request("gpu", dev).Capacity("memory", "20Gi").Obj()
		claim.UID = ""
		stored, err := claims.Create(ctx, claim, metav1.CreateOptions{})
		require.NoError(t, err)
		assert.Equal(t, map[resourceapi.QualifiedName]resource.Quantity{slices.CapMemory: resource.MustParse("20Gi")},
			stored.Spec.Devices.Requests[0].Exactly.Capacity.Requests, "stored with the published name")
		runPod(ctx, t, cs, "research", "mem-direct", corev1.PodResourceClaim{Name: "gpu", ResourceClaimName: &stored.Name})
		requireConsumed(ctx, t, cs, "research", stored.Name, resource.MustParse("20Gi"))
	})

	t.Run("through a template, with compute", func(t *testing.T) {
		spec := tierratest.MakeClaim("", "").Request("gpu", dev).Capacity("memory", "2Gi").Capacity("compute", "250").Obj()
		tmpl, err := cs.ResourceV1().ResourceClaimTemplates("research").Create(ctx, claimTemplate("mem-2gi", spec), metav1.CreateOptions{})
		require.NoError(t, err)
		assert.Equal(t, map[resourceapi.QualifiedName]resource.Quantity{
			slices.CapMemory: resource.MustParse("2Gi"), slices.CapCompute: resource.MustParse("250"),
		}, tmpl.Spec.Spec.Devices.Requests[0].Exactly.Capacity.Requests, "the template is rewritten")
		pod := runPod(ctx, t, cs, "research", "mem-template", corev1.PodResourceClaim{Name: "gpu", ResourceClaimTemplateName: &tmpl.Name})
		require.NotEmpty(t, pod.Status.ResourceClaimStatuses, "the resourceclaim controller made the pod's claim")
		requireConsumed(ctx, t, cs, "research", *pod.Status.ResourceClaimStatuses[0].ResourceClaimName, resource.MustParse("2Gi"))
	})

	tests := map[string]struct {
		claim   *resourceapi.ResourceClaim
		wantErr string
	}{
		"a name no device has": {
			claim: tierratest.MakeClaim("vram", "research").Request("gpu", dev).Capacity("vram", "1").Obj(),
			wantErr: "request gpu (DeviceClass dev.gpu.tierra.dev) asks for capacity vram, which no device of driver gpu.tierra.dev has; " +
				"the capacity names that exist are: gpu.tierra.dev/memory, gpu.tierra.dev/compute"},
		"in a fallback subrequest": {
			claim:   tierratest.MakeClaim("vram-sub", "research").FirstAvailable("gpu", tierratest.Sub("small", dev), withCapacity(tierratest.Sub("big", dev), "vram", "1")).Obj(),
			wantErr: "request gpu/big (DeviceClass dev.gpu.tierra.dev) asks for capacity vram"},
		"both spellings of memory": {
			claim:   tierratest.MakeClaim("twice", "research").Request("gpu", dev).Capacity("memory", "1Gi").Capacity(slices.CapMemory, "1Gi").Obj(),
			wantErr: "asks for capacity memory, which no device"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.claim.UID = ""
			_, err := claims.Create(ctx, tc.claim, metav1.CreateOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
	t.Run("another driver's class is not Tierra's business", func(t *testing.T) {
		claim := tierratest.MakeClaim("other", "research").Request("gpu", "other.example.com").Capacity("vram", "1").Obj()
		claim.UID = ""
		stored, err := claims.Create(ctx, claim, metav1.CreateOptions{})
		require.NoError(t, err)
		assert.Contains(t, stored.Spec.Devices.Requests[0].Exactly.Capacity.Requests, resourceapi.QualifiedName("vram"))
	})
}

// waitCapacityPolicies waits (with dry runs, which admission sees too) until
// the apiserver has loaded both capacity-names policies: the rewrite and the
// refusal.
func waitCapacityPolicies(ctx context.Context, t *testing.T, claims resourceclient.ResourceClaimInterface, class string) {
	t.Helper()
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	probe := func(capacity resourceapi.QualifiedName, q string) *resourceapi.ResourceClaim {
		c := tierratest.MakeClaim("probe", "").Request("gpu", class).Capacity(capacity, q).Obj()
		c.UID = ""
		return c
	}
	waitRefused(t, ctx, func(ctx context.Context) error {
		_, err := claims.Create(ctx, probe("vram", "1"), dryRun)
		return err
	})
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		c, err := claims.Create(ctx, probe("memory", "1Gi"), dryRun)
		if err != nil {
			return false, nil
		}
		_, rewritten := c.Spec.Devices.Requests[0].Exactly.Capacity.Requests[slices.CapMemory]
		return rewritten, nil
	})
	require.NoError(t, err, "the capacity-names MutatingAdmissionPolicy never rewrote a dry run")
}

func withCapacity(s resourceapi.DeviceSubRequest, name resourceapi.QualifiedName, q string) resourceapi.DeviceSubRequest {
	s.Capacity = &resourceapi.CapacityRequirements{Requests: map[resourceapi.QualifiedName]resource.Quantity{name: resource.MustParse(q)}}
	return s
}

// startStack starts a control plane with kwok and installs the stack on it.
func startStack(t *testing.T) (context.Context, kubernetes.Interface) {
	t.Helper()
	if err := cluster.CheckBinaries("", true); err != nil {
		t.Skipf("control plane: %v; run %s", err, cluster.BuildCommand)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir, err := os.MkdirTemp("", "tierra-capacity-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c, err := cluster.Start(ctx, cluster.Options{StateDir: filepath.Join(dir, "cluster"), Kwok: true, StopWithParent: true, Log: logWriter{t}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	require.NoError(t, stack.Install(ctx, c))
	cs, err := c.Clientset()
	require.NoError(t, err)
	return ctx, cs
}

// publishSharedNode renders the demo policy's classes, adds a kwok node and
// publishes its two L4s (dev tier: time-sliced, tenant slots) as the plugin
// would.
func publishSharedNode(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	root, err := cluster.RepoRoot()
	require.NoError(t, err)
	policy, err := plan.LoadPolicy(filepath.Join(root, stack.TierPolicy))
	require.NoError(t, err)
	classes, err := tiers.Render(policy)
	require.NoError(t, err)
	for _, c := range classes {
		_, err := cs.ResourceV1().DeviceClasses().Create(ctx, c, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, stack.AddKwokNode(ctx, cs, capacityNode))
	m := tierratest.Machine(2, func(i int) inventory.GPU { return tierratest.L4(i) })
	dr, err := slices.Build(slices.Node{Name: capacityNode, Machine: m}, policy)
	require.NoError(t, err)
	for _, s := range slices.ResourceSlices(capacityNode, dr) {
		_, err := cs.ResourceV1().ResourceSlices().Create(ctx, s, metav1.CreateOptions{})
		require.NoError(t, err)
	}
}

// runPod creates a pod with the claim on the GPU node and waits until the
// scheduler has bound it.
func runPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string, claim corev1.PodResourceClaim) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			NodeSelector:   map[string]string{corev1.LabelHostname: capacityNode},
			ResourceClaims: []corev1.PodResourceClaim{claim},
			Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/cuda:test",
				Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: claim.Name}}}}},
		},
	}
	_, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pod, err = cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && pod.Spec.NodeName != "", err
	})
	require.NoError(t, err, "the scheduler never bound pod %s/%s", ns, name)
	return pod
}

// requireConsumed checks the claim is allocated a shared Tierra device and
// consumes the memory it asked for under the published name.
func requireConsumed(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string, memory resource.Quantity) {
	t.Helper()
	claim, err := cs.ResourceV1().ResourceClaims(ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, claim.Status.Allocation, "claim %s allocated", name)
	results := claim.Status.Allocation.Devices.Results
	require.Len(t, results, 1)
	assert.Equal(t, slices.DriverName, results[0].Driver)
	assert.Equal(t, capacityNode, results[0].Pool)
	require.Contains(t, results[0].ConsumedCapacity, resourceapi.QualifiedName(slices.CapMemory), "consumes the shared GPU's memory")
	got := results[0].ConsumedCapacity[slices.CapMemory]
	assert.Zero(t, memory.Cmp(got), "consumed %s, want %s", got.String(), memory.String())
}
