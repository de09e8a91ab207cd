package usage_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/usage"
)

func TestAPIEventsOnThePod(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	n := 0
	client.PrependReactor("create", "events", func(a clienttesting.Action) (bool, runtime.Object, error) {
		ev := a.(clienttesting.CreateAction).GetObject().(*corev1.Event)
		n++
		ev.Name = fmt.Sprint(ev.GenerateName, n) // the fake ignores GenerateName
		return false, nil, nil
	})
	sink := usage.APIEvents{Client: client, Node: "node-1"}
	c := usage.Claim{Namespace: "team-a", Name: "train"}
	sink.PodEvent(ctx, c, usage.Pod{UID: "uid-1", Name: "train-0"}, true, usage.ReasonIdle, "GPU idle for 2h; the claim train holds 4 H200s")
	sink.PodEvent(ctx, c, usage.Pod{UID: "uid-1", Name: "train-0"}, false, usage.ReasonOversized, "peak ...")
	evs, err := client.CoreV1().Events("team-a").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, evs.Items, 2)
	ev := evs.Items[0]
	if ev.Reason != usage.ReasonIdle {
		ev = evs.Items[1]
	}
	assert.Equal(t, corev1.EventTypeWarning, ev.Type)
	assert.Equal(t, corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "team-a", Name: "train-0", UID: "uid-1"}, ev.InvolvedObject)
	assert.Equal(t, "GPU idle for 2h; the claim train holds 4 H200s", ev.Message)
	assert.Equal(t, corev1.EventSource{Component: "tierra-kubelet-plugin", Host: "node-1"}, ev.Source)
}
