// Package e2e runs Tierra end to end on the local control plane (package
// cluster): etcd, kube-apiserver, kube-scheduler, kube-controller-manager and
// kwok on loopback, tierra-controller as a process, and the GPU nodes of
// demo/cluster.yaml simulated by package nodesim — the real
// tierra-kubelet-plugin binary on fake machines, driven by the kubelet's own
// DRA manager. The scenarios use the demo's manifests where they can, so the
// demo and the tests cannot drift apart.
package e2e
