package deploy

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// nodeNameExtra is the user extra the apiserver sets from the node of the
// pod a service account token is bound to.
const nodeNameExtra = "authentication.kubernetes.io/node-name"

// identity is a client acting with one service account token.
type identity struct {
	token string
	cfg   *rest.Config
	cs    kubernetes.Interface
}

// podOn creates a pod of the service account, bound to node (spec.nodeName),
// as the DaemonSet controller makes one per node. Nothing runs it (the
// control plane has no kubelet); it is what the plugin's token is bound to.
func (s *suite) podOn(t *testing.T, sa, name, node string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:                     node,
			ServiceAccountName:           sa,
			AutomountServiceAccountToken: ptr.To(false),
			// Not evicted from the kubelet-less node while the test runs.
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers:  []corev1.Container{{Name: "plugin", Image: "registry.invalid/tierra:test"}},
		},
	}
	pod, err := s.cs.CoreV1().Pods(namespace).Create(s.ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	return pod
}

// identityOf returns a client with a token of the service account, bound to
// pod when it is not nil (the token then carries the pod's node name).
func (s *suite) identityOf(t *testing.T, sa string, pod *corev1.Pod) identity {
	t.Helper()
	req := tokenRequest()
	if pod != nil {
		req.Spec.BoundObjectRef = &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	tr, err := s.cs.CoreV1().ServiceAccounts(namespace).CreateToken(s.ctx, sa, req, metav1.CreateOptions{})
	require.NoError(t, err)
	cfg := rest.AnonymousClientConfig(s.cfg)
	cfg.BearerToken = tr.Status.Token
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return identity{token: tr.Status.Token, cfg: cfg, cs: cs}
}

// whoami asks the apiserver who the identity is (SelfSubjectReview).
func (id identity) whoami(ctx context.Context) (authnv1.UserInfo, error) {
	r, err := id.cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return authnv1.UserInfo{}, fmt.Errorf("self subject review: %w", err)
	}
	return r.Status.UserInfo, nil
}

func tokenRequest() *authnv1.TokenRequest {
	return &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
}
