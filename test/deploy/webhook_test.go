package deploy

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/webhook"
)

// serveWebhook runs Tierra's claim webhook (the code tierra-controller
// serves) on loopback with a certificate for 127.0.0.1, and points the
// chart's rendered ValidatingWebhookConfiguration at it instead of the
// in-cluster Service: the apiserver then calls it exactly as in a cluster.
func serveWebhook(t *testing.T, ctx context.Context, objs []*unstructured.Unstructured, cs kubernetes.Interface) {
	t.Helper()
	vwc := find(t, objs, "ValidatingWebhookConfiguration", release+"-controller-webhook")
	crt, key, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.crt"), crt, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.key"), key, 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	hooks, _, err := unstructured.NestedSlice(vwc.Object, "webhooks")
	require.NoError(t, err)
	require.Len(t, hooks, 1)
	hook := hooks[0].(map[string]any)
	path, _, _ := unstructured.NestedString(hook, "clientConfig", "service", "path")
	require.Equal(t, webhook.Path, path, "the chart calls the path the controller serves")
	hook["clientConfig"] = map[string]any{"url": fmt.Sprintf("https://%s%s", addr, path), "caBundle": base64.StdEncoding.EncodeToString(crt)}
	require.NoError(t, unstructured.SetNestedSlice(vwc.Object, hooks, "webhooks"))

	_, wctx := ktesting.NewTestContext(t)
	wctx, cancel := context.WithCancel(wctx)
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- webhook.Serve(wctx, webhook.Options{Addr: addr, CertDir: dir, Classes: classes{cs}}, ready)
	}()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	<-ready
}

type classes struct{ cs kubernetes.Interface }

func (c classes) DeviceClass(ctx context.Context, name string) (*resourceapi.DeviceClass, error) {
	return c.cs.ResourceV1().DeviceClasses().Get(ctx, name, metav1.GetOptions{})
}

// testClaimWebhook: the apiserver refuses a claim or template whose
// GpuConfig prepare would refuse, with prepare's message, and admits the
// rest (a claim without GpuConfig is not even sent to the webhook).
func (s *suite) testClaimWebhook(t *testing.T) {
	const ns = "webhook-test"
	require.NoError(t, ensureNamespace(s.ctx, s.cs, ns, nil))
	mps := func(pct int) string {
		return fmt.Sprintf(`{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"MPS","mps":{"defaultActiveThreadPercentage":%d}}}`, pct)
	}
	claims := s.cs.ResourceV1().ResourceClaims(ns)
	_, err := claims.Create(s.ctx, tierratest.MakeClaim("hog", ns).Request("gpu", "dev.gpu.tierra.dev").Config(mps(150)).Obj(), metav1.CreateOptions{})
	require.Error(t, err, "a config prepare would refuse is refused at admission")
	for _, want := range []string{"denied the request", "sharing.mps.defaultActiveThreadPercentage", "150", "must be between 1 and 100"} {
		assert.ErrorContains(t, err, want)
	}

	_, err = claims.Create(s.ctx, tierratest.MakeClaim("typo", ns).Request("gpu", "dev.gpu.tierra.dev").
		Config(`{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":{"strategy":"TimeSlicing","timeSlicing":{"intervl":"Long"}}}`).Obj(), metav1.CreateOptions{})
	require.ErrorContains(t, err, `unknown field "sharing.timeSlicing.intervl"`)

	tmpl := &resourceapi.ResourceClaimTemplate{ObjectMeta: metav1.ObjectMeta{Name: "hog", Namespace: ns},
		Spec: resourceapi.ResourceClaimTemplateSpec{Spec: tierratest.MakeClaim("x", ns).Request("gpu", "dev.gpu.tierra.dev").Config(mps(0)).Obj().Spec}}
	_, err = s.cs.ResourceV1().ResourceClaimTemplates(ns).Create(s.ctx, tmpl, metav1.CreateOptions{})
	require.ErrorContains(t, err, "must be between 1 and 100", "templates are checked too")

	_, err = claims.Create(s.ctx, tierratest.MakeClaim("ok", ns).Request("gpu", "dev.gpu.tierra.dev").Config(mps(50)).Obj(), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = claims.Create(s.ctx, tierratest.MakeClaim("plain", ns).Request("gpu", "gpu.tierra.dev").Obj(), metav1.CreateOptions{})
	require.NoError(t, err)

}
