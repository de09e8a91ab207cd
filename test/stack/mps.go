package stack

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// PluginNamespace is the simulated nodes' plugin namespace, where their
// MPS daemon pods go.
const PluginNamespace = "tierra-system"

// PluginImage is the image of the MPS daemon pods: the simulated nodes run
// it as the locally built plugin binary (nodesim.Options.Images).
const PluginImage = "tierra.dev/tierra:local"

// PluginArgs are the flags that make a simulated node's plugin run each
// MPS daemon in a pod of its own, as the chart does, with the MPS control
// stand-in as nvidia-cuda-mps-control.
func (b Binaries) PluginArgs() []string {
	return []string{"--mps-daemon-image=" + PluginImage, "--namespace=" + PluginNamespace,
		"--mps-control-command=" + b.MPSControl}
}

// Images maps PluginImage to the plugin binary, for nodesim.Options.Images.
func (b Binaries) Images() map[string]string { return map[string]string{PluginImage: b.Plugin} }

// ImagesFlag is Images as tierra-node's --images flag.
func (b Binaries) ImagesFlag() string {
	var kv []string
	for img, exe := range b.Images() {
		kv = append(kv, img+"="+exe)
	}
	return strings.Join(kv, ",")
}

// EnsurePluginNamespace creates PluginNamespace.
func EnsurePluginNamespace(ctx context.Context, cs kubernetes.Interface) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: PluginNamespace}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", PluginNamespace, err)
	}
	return nil
}
