// Package scheduler runs openb pods through tierra-scheduler (kube-scheduler
// with the TierraYield plugin, cmd/tierra-scheduler) beside the plain
// kube-scheduler on the local control plane, on kwok nodes carrying
// pkg/slices' devices, and compares both with the simulation.
package scheduler
