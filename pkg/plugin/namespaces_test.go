package plugin

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
)

func TestNamespaceLabelsFromTheCache(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"tenant": "research"}}})
	n, stop := watchNamespaces(ctx, client)
	t.Cleanup(func() {
		cancel() // the informer stops with ctx; stop waits for it
		stop()
	})
	gets := 0
	client.PrependReactor("get", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) {
		gets++
		return false, nil, nil
	})

	labels, err := n.NamespaceLabels(ctx, "team-a")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"tenant": "research"}, labels)
	assert.Zero(t, gets, "a cached namespace costs no API call")

	// Not in the cache (yet): read from the API; absent: no labels.
	_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b", Labels: map[string]string{"tenant": "product"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	labels, err = namespaceLabels{client: client}.NamespaceLabels(ctx, "team-b")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"tenant": "product"}, labels)
	labels, err = n.NamespaceLabels(ctx, "absent")
	require.NoError(t, err)
	assert.Nil(t, labels)
	assert.Positive(t, gets)
}
