// Package score is Tierra's node scoring for GPU pods, shared by the
// simulation (`tierra sim`, pkg/sim) and the scheduler plugin
// (cmd/tierra-scheduler), so that what the simulation measures is what the
// scheduler does.
//
// It works on a node as the scheduler's DRA state describes it: the devices
// of the node's ResourceSlices in the allocator's order (ShapeOf reads a
// device's consumable capacities), what allocated claims consumed from each,
// and the node's cpu and memory. A pod is its host requests plus its claim's
// device requests, each with what it would consume on every device shape
// (ConsumedMilli mirrors the allocator's rounding). FirstFit predicts the
// devices the allocator's first fit takes on a node; a Scorer ranks the
// node for that placement.
//
// The package is pure: no API calls, no k8s.io/kubernetes import, no cgo.
package score
