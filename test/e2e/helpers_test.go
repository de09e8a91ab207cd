package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/tierra-gpu/tierra/pkg/slices"
	"github.com/tierra-gpu/tierra/test/manifests"
	"github.com/tierra-gpu/tierra/test/stack"
)

const timeout = 90 * time.Second

func poll(ctx context.Context, t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, cond)
	require.NoError(t, err, what)
}

// applyFile applies a file of the repository (relative to its root).
func applyFile(ctx context.Context, t *testing.T, path string) {
	t.Helper()
	require.NoError(t, env.apply.ApplyFiles(ctx, filepath.Join(env.root, path)))
}

// applyYAML applies manifests given inline.
func applyYAML(ctx context.Context, t *testing.T, doc string) {
	t.Helper()
	objs, err := manifests.Decode([]byte(doc))
	require.NoError(t, err)
	require.NoError(t, env.apply.Apply(ctx, objs...))
}

// waitRunning waits until the pod runs and returns it.
func waitRunning(ctx context.Context, t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var err error
		pod, err = env.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && pod.Status.Phase == corev1.PodRunning, err
	})
	require.NoError(t, err, "pod %s/%s never ran; last events: %s", ns, name, stack.EventSummary(ctx, env.cs, ns, name))
	return pod
}

// podClaim returns the claim of the pod's only resource claim.
func podClaim(ctx context.Context, t *testing.T, pod *corev1.Pod) *resourceapi.ResourceClaim {
	t.Helper()
	require.Len(t, pod.Status.ResourceClaimStatuses, 1, "pod %s claim statuses", pod.Name)
	name := pod.Status.ResourceClaimStatuses[0].ResourceClaimName
	require.NotNil(t, name)
	claim, err := env.cs.ResourceV1().ResourceClaims(pod.Namespace).Get(ctx, *name, metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, claim.Status.Allocation, "claim %s allocated", claim.Name)
	return claim
}

// deletePods deletes pods and waits until they and their generated claims
// are gone: the node unprepared them and the claim controller cleaned up.
func deletePods(ctx context.Context, t *testing.T, ns string, names ...string) {
	t.Helper()
	for _, name := range names {
		err := env.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if !apierrors.IsNotFound(err) {
			require.NoError(t, err)
		}
	}
	poll(ctx, t, "pods and their claims never went", func(ctx context.Context) (bool, error) {
		for _, name := range names {
			if _, err := env.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		claims, err := env.cs.ResourceV1().ResourceClaims(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range claims.Items {
			for _, name := range names {
				if owner := metav1.GetControllerOf(&c); owner != nil && owner.Name == name {
					return false, nil
				}
			}
		}
		return true, nil
	})
}

// deleteNamespaceObjects removes what a scenario left in a namespace.
func cleanNamespace(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	pods, err := env.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	deletePods(ctx, t, ns, names...)
	grace := metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}
	require.NoError(t, env.cs.ResourceV1().ResourceClaims(ns).DeleteCollection(ctx, grace, metav1.ListOptions{}))
	require.NoError(t, env.cs.ResourceV1().ResourceClaimTemplates(ns).DeleteCollection(ctx, grace, metav1.ListOptions{}))
	poll(ctx, t, "claims never went", func(ctx context.Context) (bool, error) {
		claims, err := env.cs.ResourceV1().ResourceClaims(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(claims.Items) == 0, err
	})
}

// events returns the messages of the pod's events with the reason.
func events(ctx context.Context, ns, pod, reason string) []string {
	list, err := env.cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.name": pod, "reason": reason}.String(),
	})
	if err != nil {
		return nil
	}
	var msgs []string
	for _, e := range list.Items {
		msgs = append(msgs, e.Message)
	}
	return msgs
}

// waitEvent waits for an event of the pod with the reason and returns its
// message.
func waitEvent(ctx context.Context, t *testing.T, ns, pod, reason string) string {
	t.Helper()
	var msgs []string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		msgs = events(ctx, ns, pod, reason)
		return len(msgs) > 0, nil
	})
	require.NoError(t, err, "no %s event for %s/%s; its events: %s", reason, ns, pod, stack.EventSummary(ctx, env.cs, ns, pod))
	return msgs[0]
}

// publishedDevice finds a device in the ResourceSlices of a pool.
func publishedDevice(ctx context.Context, t *testing.T, pool, device string) resourceapi.Device {
	t.Helper()
	list, err := env.cs.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{
		FieldSelector: resourceapi.ResourceSliceSelectorNodeName + "=" + pool,
	})
	require.NoError(t, err)
	for _, s := range list.Items {
		for _, d := range s.Spec.Devices {
			if s.Spec.Pool.Name == pool && d.Name == device {
				return d
			}
		}
	}
	t.Fatalf("device %s of pool %s is not published", device, pool)
	return resourceapi.Device{}
}

// machine is the part of a fake machine's state file the tests read.
type machine struct {
	GPUs []struct {
		MIGMode      int `json:"migMode"`
		ComputeMode  int `json:"computeMode"`
		GPUInstances []struct {
			ID, ProfileID, Start, Size uint32
		} `json:"gpuInstances"`
	} `json:"gpus"`
}

// nvmlExclusiveProcess is NVML's COMPUTEMODE_EXCLUSIVE_PROCESS.
const nvmlExclusiveProcess = 3

func machineState(t *testing.T, node string) machine {
	t.Helper()
	data, err := os.ReadFile(env.nodes[node].FakeMachineState())
	require.NoError(t, err)
	var m machine
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

// cdiSpecs counts the CDI spec files the node's plugin has written.
func cdiSpecs(t *testing.T, node string) int {
	t.Helper()
	entries, err := os.ReadDir(env.nodes[node].CDIDir())
	require.NoError(t, err)
	return len(entries)
}

func intAttr(t *testing.T, d resourceapi.Device, name resourceapi.QualifiedName) int64 {
	t.Helper()
	v, ok := slices.IntAttribute(d, name)
	require.True(t, ok, "device %s has no %s", d.Name, name)
	return v
}

// applyErr applies inline manifests and returns the apiserver's answer.
func applyErr(ctx context.Context, doc string) error {
	objs, err := manifests.Decode([]byte(doc))
	if err != nil {
		return err
	}
	return env.apply.Apply(ctx, objs...)
}

// templateYAML is a ResourceClaimTemplate with one request "gpu" of class;
// request is the request's further YAML under `exactly` (capacity,
// selectors), indented by 10 spaces, and sharing, when set, the GpuConfig's
// sharing (flow style) as the claim's config.
func templateYAML(ns, name, class, request, sharing string) string {
	doc := fmt.Sprintf(`
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: %s, namespace: %s}
spec:
  spec:
    devices:
      requests:
      - name: gpu
        exactly:
          deviceClassName: %s
%s`, name, ns, class, request)
	if sharing != "" {
		doc += fmt.Sprintf(`      config:
      - opaque:
          driver: gpu.tierra.dev
          parameters:
            apiVersion: tierra.dev/v1alpha1
            kind: GpuConfig
            sharing: %s
`, sharing)
	}
	return doc
}

// Request lines for templateYAML.
const (
	notebookRequest = `          capacity: {requests: {gpu.tierra.dev/compute: "250", gpu.tierra.dev/memory: 4Gi}}
`
	computeRequest = `          capacity: {requests: {gpu.tierra.dev/compute: "100"}}
`
)
