package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/test/stack"
)

// devicePluginDir holds the device-plugin-style manifests.
const devicePluginDir = "demo/scenarios/queues/device-plugin/"

// Manifests written for NVIDIA's device plugin run unchanged on Tierra's
// tiers (KEP-5004): the Job's nvidia.com/gpu: 4 becomes a claim of the
// training class, the Deployment's tierra.dev/inference-gpu: 1 one of the
// inference class; the simulated kubelet's DRA manager finds each claim in
// pod.status.extendedResourceClaimStatus and the plugin prepares it like
// any claim. The namespace's quota on requests.nvidia.com/gpu refuses the
// fifth GPU, asked either way.
func TestDevicePluginManifests(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const ns, train, infer = "migration", "dgx-h200-train", "dgx-h200-infer"
	t.Cleanup(func() { removeMigration(context.WithoutCancel(ctx), t) })
	taintGPUNode(ctx, t, train)
	applyFile(ctx, t, devicePluginDir+"00-namespace.yaml")
	poll(ctx, t, "quota never computed", func(ctx context.Context) (bool, error) {
		q, err := env.cs.CoreV1().ResourceQuotas(ns).Get(ctx, "gpus", metav1.GetOptions{})
		return err == nil && len(q.Status.Hard) > 0, nil
	})
	applyFile(ctx, t, devicePluginDir+"10-training-job.yaml")
	applyFile(ctx, t, devicePluginDir+"20-inference-deployment.yaml")

	trainer := waitRunningSelected(ctx, t, ns, "job-name=pretrain")
	assert.Equal(t, train, trainer.Spec.NodeName, "tolerates the GPU taint, gets the training tier's node")
	claim := extendedClaim(ctx, t, trainer, "trainer", "nvidia.com/gpu")
	results := claim.Status.Allocation.Devices.Results
	require.Len(t, results, 4)
	for _, r := range results {
		assert.Equal(t, "training.gpu.tierra.dev", className(claim, r.Request), "request %s", r.Request)
		d := publishedDevice(ctx, t, r.Pool, r.Device)
		assert.Equal(t, "training", slices.StringAttribute(d, slices.AttrTier))
		gpu := intAttr(t, d, slices.AttrIndex)
		assert.Equal(t, nvmlExclusiveProcess, machineState(t, train).GPUs[gpu].ComputeMode, "GPU %d prepared exclusive", gpu)
	}
	assert.Contains(t, waitEvent(ctx, t, ns, trainer.Name, "DynamicResourcesPrepared"), "gpu.tierra.dev/claim=")
	assert.Equal(t, 1, cdiSpecs(t, train), "one CDI spec for the extended-resource claim")

	server := waitRunningSelected(ctx, t, ns, "app=chat")
	assert.Equal(t, infer, server.Spec.NodeName)
	chat := extendedClaim(ctx, t, server, "server", "tierra.dev/inference-gpu")
	require.Len(t, chat.Status.Allocation.Devices.Results, 1)
	slice := publishedDevice(ctx, t, infer, chat.Status.Allocation.Devices.Results[0].Device)
	assert.NotEmpty(t, slices.StringAttribute(slice, slices.AttrMIGProfile), "a MIG slice of the inference tier")
	assert.Contains(t, waitEvent(ctx, t, ns, server.Name, "DynamicResourcesPrepared"), "gpu.tierra.dev/claim=")
	assert.NotEmpty(t, machineState(t, infer).GPUs[intAttr(t, slice, slices.AttrIndex)].GPUInstances, "the MIG instance was created")

	q, err := env.cs.CoreV1().ResourceQuotas(ns).Get(ctx, "gpus", metav1.GetOptions{})
	require.NoError(t, err)
	used := q.Status.Used["requests.nvidia.com/gpu"]
	assert.Equal(t, int64(4), used.Value(), "quota used")
	err = applyErr(ctx, devicePluginPod(ns, "fifth-gpu", true))
	require.Error(t, err, "a fifth nvidia.com/gpu must be refused")
	assert.Contains(t, err.Error(), "exceeded quota")
	assert.Contains(t, err.Error(), "requests.nvidia.com/gpu")
	err = applyErr(ctx, `
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: fifth-gpu-claim, namespace: migration}
spec:
  devices:
    requests: [{name: gpu, exactly: {deviceClassName: training.gpu.tierra.dev}}]
`)
	require.Error(t, err, "a claim of the class nvidia.com/gpu maps to counts against the same quota")
	assert.Contains(t, err.Error(), "exceeded quota")

	// The taint keeps a GPU pod without the toleration off the node.
	applyYAML(ctx, t, devicePluginPod("research", "untolerated", false))
	msg := waitEvent(ctx, t, "research", "untolerated", "FailedScheduling")
	assert.Contains(t, msg, "untolerated taint")
	applyYAML(ctx, t, devicePluginPod("research", "tolerated", true))
	assert.Equal(t, train, waitRunning(ctx, t, "research", "tolerated").Spec.NodeName)
	deletePods(ctx, t, "research", "untolerated", "tolerated")

	// Unprepared when the Job's pod completes, while its object stays, as
	// the kubelet unprepares a terminated pod's claims.
	require.NoError(t, stack.FinishPod(ctx, env.cs, ns, trainer.Name))
	poll(ctx, t, "the completed pod's CDI spec never went", func(context.Context) (bool, error) {
		return cdiSpecs(t, train) == 0, nil
	})
	done, err := env.cs.CoreV1().Pods(ns).Get(ctx, trainer.Name, metav1.GetOptions{})
	require.NoError(t, err, "the completed pod stays")
	assert.Equal(t, corev1.PodSucceeded, done.Status.Phase)
	for i, g := range machineState(t, train).GPUs {
		assert.NotEqual(t, nvmlExclusiveProcess, g.ComputeMode, "GPU %d still exclusive after the Job's pod completed", i)
	}

	// Nothing left when the Job goes.
	removeMigration(ctx, t)
	assert.Zero(t, cdiSpecs(t, train), "CDI spec left after unprepare")
}

// devicePluginPod is a pod asking for one nvidia.com/gpu, tolerating the
// GPU taint or not.
func devicePluginPod(ns, name string, tolerate bool) string {
	doc := `
apiVersion: v1
kind: Pod
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec:
  containers:
  - name: c
    image: registry.k8s.io/pause:3.10
    resources: {limits: {nvidia.com/gpu: 1}}
`
	if tolerate {
		doc += `  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
`
	}
	return doc
}

// taintGPUNode gives the node the device plugin's usual GPU taint until the
// test ends.
func taintGPUNode(ctx context.Context, t *testing.T, node string) {
	t.Helper()
	taint := corev1.Taint{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}
	setTaints(ctx, t, node, func(ts []corev1.Taint) []corev1.Taint { return append(ts, taint) })
	t.Cleanup(func() {
		setTaints(context.WithoutCancel(ctx), t, node, func(ts []corev1.Taint) []corev1.Taint {
			var out []corev1.Taint
			for _, x := range ts {
				if x.Key != taint.Key {
					out = append(out, x)
				}
			}
			return out
		})
	})
}

func setTaints(ctx context.Context, t *testing.T, name string, edit func([]corev1.Taint) []corev1.Taint) {
	t.Helper()
	poll(ctx, t, "node taints never written", func(ctx context.Context) (bool, error) {
		n, err := env.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		n.Spec.Taints = edit(n.Spec.Taints)
		_, err = env.cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err == nil, nil
	})
}

// removeMigration deletes the Job and the Deployment, then their pods and
// claims, then the namespace (once; later calls find it gone or going).
func removeMigration(ctx context.Context, t *testing.T) {
	t.Helper()
	const ns = "migration"
	if _, err := env.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return
	}
	bg := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}
	_ = env.cs.BatchV1().Jobs(ns).Delete(ctx, "pretrain", bg)
	_ = env.cs.AppsV1().Deployments(ns).Delete(ctx, "chat", bg)
	poll(ctx, t, "Job and Deployment never went", func(ctx context.Context) (bool, error) {
		jobs, err := env.cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		rs, err := env.cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(jobs.Items) == 0 && len(rs.Items) == 0, nil
	})
	cleanNamespace(ctx, t, ns)
	_ = env.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
}

// waitRunningSelected waits until one pod with the labels runs.
func waitRunningSelected(ctx context.Context, t *testing.T, ns, selector string) *corev1.Pod {
	t.Helper()
	var name string
	poll(ctx, t, "no pod "+selector+" in "+ns, func(ctx context.Context) (bool, error) {
		pods, err := env.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil || len(pods.Items) == 0 {
			return false, nil
		}
		name = pods.Items[0].Name
		return true, nil
	})
	return waitRunning(ctx, t, ns, name)
}

// extendedClaim returns the allocated claim the scheduler made for the
// pod's extended resources, checking it maps the container's resource.
func extendedClaim(ctx context.Context, t *testing.T, pod *corev1.Pod, container, resourceName string) *resourceapi.ResourceClaim {
	t.Helper()
	st := pod.Status.ExtendedResourceClaimStatus
	require.NotNil(t, st, "pod %s has no extendedResourceClaimStatus", pod.Name)
	var mapped bool
	for _, m := range st.RequestMappings {
		mapped = mapped || (m.ContainerName == container && m.ResourceName == resourceName)
	}
	assert.True(t, mapped, "container %s's %s is mapped: %+v", container, resourceName, st.RequestMappings)
	claim, err := env.cs.ResourceV1().ResourceClaims(pod.Namespace).Get(ctx, st.ResourceClaimName, metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, claim.Status.Allocation, "claim %s allocated", claim.Name)
	assert.Equal(t, "true", claim.Annotations[resourceapi.ExtendedResourceClaimAnnotation])
	require.Len(t, claim.Status.ReservedFor, 1)
	assert.Equal(t, pod.UID, claim.Status.ReservedFor[0].UID)
	return claim
}

// className is the DeviceClass of the claim's request.
func className(claim *resourceapi.ResourceClaim, request string) string {
	for _, r := range claim.Spec.Devices.Requests {
		if r.Name == request && r.Exactly != nil {
			return r.Exactly.DeviceClassName
		}
	}
	return ""
}

// The apiserver refuses a policy whose tiers collide on an extended
// resource (the CRD's CEL; Validate, in the Ready condition, names both).
func TestExtendedResourceCollisionRefused(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	tests := map[string]struct{ extra, wantMsg string }{
		"two tiers, one name": {
			extra:   "    extendedResourceName: tierra.dev/gpu\n",
			wantMsg: "two tiers name the same extendedResourceName",
		},
		"nvidia.com/gpu mapped and named": {
			extra:   "    extendedResourceName: nvidia.com/gpu\n  nvidiaGPUTier: fast\n",
			wantMsg: "another tier names nvidia.com/gpu, which nvidiaGPUTier maps to tier fast",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := applyErr(ctx, `
apiVersion: tierra.dev/v1alpha1
kind: TierPolicy
metadata: {name: collide}
spec:
  tiers:
  - name: fast
    partitioning: Whole
    extendedResourceName: tierra.dev/gpu
  - name: slow
    partitioning: Whole
`+tc.extra)
			require.Error(t, err, "the apiserver must refuse it")
			assert.Contains(t, err.Error(), tc.wantMsg)
		})
	}
}
