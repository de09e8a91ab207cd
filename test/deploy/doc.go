// Package deploy tests what an admin installs: the Helm chart in
// deployments/helm/tierra, rendered by the real Helm (built from the module
// proxy by `make helm`) and applied with server-side apply to a real control
// plane (test/cluster). Against that apiserver it proves the chart's
// least-privilege RBAC and admission policies: a kubelet plugin token bound
// to node A writes ResourceSlices of node A only and device status of
// driver gpu.tierra.dev only; the controller's identity manages DeviceClasses
// and TierPolicy status and nothing else; a tenant asking for a tier it is
// not allowed is refused with the policy's message. It also runs two real
// plugin processes on one node's directories, as a DaemonSet surge does, and
// prepares claims through the swap without a single failure.
package deploy
