package plugin

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/tierra-gpu/tierra/pkg/metrics"
)

// namespaceLabels reads namespace labels for tenant resolution from an
// informer's cache, so prepare makes one API call (the claim), not two. A
// namespace the cache has not seen yet (created a moment ago) is read from
// the API.
type namespaceLabels struct {
	client kubernetes.Interface
	lister corelisters.NamespaceLister
}

// namespaceSyncTimeout bounds the wait for the namespace cache at start.
const namespaceSyncTimeout = 30 * time.Second

// watchNamespaces starts the namespace informer and waits for its cache
// (at most namespaceSyncTimeout: without it, e.g. when RBAC does not allow
// listing namespaces, each prepare reads its namespace from the API). The
// returned function stops the informer.
func watchNamespaces(ctx context.Context, client kubernetes.Interface) (namespaceLabels, func()) {
	factory := informers.NewSharedInformerFactory(client, 0)
	inf := factory.Core().V1().Namespaces()
	n := namespaceLabels{client: client, lister: inf.Lister()}
	informer := inf.Informer()
	factory.Start(ctx.Done())
	wait, cancel := context.WithTimeout(ctx, namespaceSyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(wait.Done(), informer.HasSynced) {
		klog.FromContext(ctx).Error(context.Cause(wait), "Namespace cache not synced; reading namespaces from the API instead")
	}
	return n, factory.Shutdown
}

func (n namespaceLabels) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	if n.lister != nil {
		ns, err := n.lister.Get(name)
		if err == nil {
			return ns.Labels, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, markReason(fmt.Errorf("namespace %s from cache: %w", name, err), metrics.ReasonAPI)
		}
	}
	ns, err := n.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, markReason(fmt.Errorf("get namespace %s: %w", name, err), metrics.ReasonAPI)
	}
	return ns.Labels, nil
}
