// Package nodesim simulates one GPU node for the local control plane: the
// parts of a kubelet that a DRA driver meets, built from the kubelet's own
// code, around the real tierra-kubelet-plugin binary.
//
// A Node registers a Node object, reports it Ready and renews its Lease;
// runs tierra-kubelet-plugin on a fake machine (restarting it when it
// exits, as the kubelet restarts a DaemonSet container); registers it
// through the kubelet's plugin manager with the kubelet's DRA manager
// (k8s.io/kubernetes/pkg/kubelet/cm/dra); and runs a minimal pod lifecycle
// for the pods bound to the node: their claims are prepared through the DRA
// manager and the pod is marked Running, a deleted pod's claims are
// unprepared before the pod object goes. A prepare error becomes a Warning
// event on the pod carrying the plugin's message, and is retried with
// backoff, as the kubelet does.
//
// No containers run: the node stops where a container runtime would take
// the CDI device IDs (they are reported in a Normal event).
package nodesim
