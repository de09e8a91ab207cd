// Package queues tests queue-based admission of GPU jobs with Kueue on the
// local control plane: Kueue's controller manager (v0.17.0, built from the
// module proxy by hack/tools/kueue.sh) with its webhooks on loopback TLS,
// quotas counted in Tierra's tier DeviceClasses through Kueue's DRA
// support, and the demo's simulated DGX nodes preparing what Kueue admits.
// The queues and Jobs are the files of demo/queues.
package queues
