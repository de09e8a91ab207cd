package controller

import (
	"context"
	"errors"

	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tierra-gpu/tierra/pkg/webhook"
)

// runWithWebhook runs the controller and the claim validation webhook; when
// either stops with an error, both stop.
func runWithWebhook(ctx context.Context, c *Controller, opts webhook.Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- webhook.Serve(ctx, opts, nil) }()
	go func() { errs <- c.Run(ctx) }()
	first := <-errs
	cancel()
	return errors.Join(first, <-errs)
}

// classGetter reads DeviceClasses from the API for the webhook.
type classGetter struct{ kube kubernetes.Interface }

func (g classGetter) DeviceClass(ctx context.Context, name string) (*resourceapi.DeviceClass, error) {
	return g.kube.ResourceV1().DeviceClasses().Get(ctx, name, metav1.GetOptions{})
}
