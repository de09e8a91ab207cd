//go:build tools

// Package tools pins the upstream control plane the local cluster harness
// runs (hack/tools/build.sh builds each of these commands into _output/bin).
// It is its own module so kubectl's and the control plane's dependencies
// never reach Tierra's go.mod or the test module's.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
