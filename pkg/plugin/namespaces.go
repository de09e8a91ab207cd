package plugin

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// namespaceLabels reads namespace labels for tenant resolution from an
// informer's cache, so prepare makes one API call (the claim), not two. A
// namespace the cache has not seen yet (created a moment ago) is read from
// the API.
type namespaceLabels struct {
	client kubernetes.Interface
	lister corelisters.NamespaceLister
}

// watchNamespaces starts the namespace informer and waits for its cache;
// it stops when ctx is cancelled.
func watchNamespaces(ctx context.Context, client kubernetes.Interface) (namespaceLabels, error) {
	factory := informers.NewSharedInformerFactory(client, 0)
	inf := factory.Core().V1().Namespaces()
	n := namespaceLabels{client: client, lister: inf.Lister()}
	informer := inf.Informer()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		factory.Shutdown()
		return n, fmt.Errorf("sync the namespace cache: %w", context.Cause(ctx))
	}
	go func() {
		<-ctx.Done()
		factory.Shutdown()
	}()
	return n, nil
}

func (n namespaceLabels) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	if n.lister != nil {
		ns, err := n.lister.Get(name)
		if err == nil {
			return ns.Labels, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("namespace %s from cache: %w", name, err)
		}
	}
	ns, err := n.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get namespace %s: %w", name, err)
	}
	return ns.Labels, nil
}
