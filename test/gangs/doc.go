// Package gangs tests all-or-nothing placement of multi-pod GPU jobs on
// the local control plane with upstream's gang scheduling (PodGroup,
// scheduling.k8s.io/v1beta1 in Kubernetes 1.37, behind the GenericWorkload
// gate): the demo's training DGX, simulated by package nodesim, short of
// one pod's GPUs binds neither pod of a two-pod gang and allocates no
// claim; once the GPUs are free both bind. The manifests are
// demo/gangs's.
package gangs
