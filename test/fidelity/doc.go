// Package fidelity checks the simulation (pkg/sim) against the real
// kube-scheduler: the same nodes, slices, claims and pod sequence go
// through both, and the allocated GPU share must agree.
package fidelity
