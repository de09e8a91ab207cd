// Package sim replays a GPU cluster trace through the Kubernetes scheduler's
// own DRA allocator (k8s.io/dynamic-resource-allocation/structured) to
// measure accelerator yield: how much of a cluster's GPU capacity a node
// scoring policy manages to allocate as load grows past capacity.
//
// Nodes come from a node list, their GPUs are published by pkg/slices (one
// shared device per GPU with consumable compute and memory capacity), and
// each trace pod becomes one ResourceClaim. Within a node the allocator picks
// the devices; across nodes a pluggable Scorer picks the node.
//
// PublishCluster and LiveCluster answer "what if" for a user's own
// cluster: nodes of any openb or catalogue model published under any
// TierPolicy exactly as the kubelet plugin publishes them (or a live
// cluster's own Nodes and ResourceSlices), trace pods routed to the
// policy's tier classes (ClaimFor), and Compare replays one workload on
// each, placing as tierra-scheduler reads a cluster (score.Inventory,
// score.NewDemand) and allocating with the scheduler's allocator.
//
// The setup and the default data follow Weng et al., "Beware of
// Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation
// Gradient Descent", USENIX ATC '23
// (https://www.usenix.org/conference/atc23/presentation/weng), whose
// openb trace comes from the Alibaba cluster-trace-gpu-v2023
// (https://github.com/alibaba/clusterdata, for research and study use):
// arrival only, the trace's pods shuffled and resampled until the arrived
// GPU requests reach 130% of capacity, seeds 42-51, and the metric is the
// allocated share of GPU capacity against the arrived load.
package sim
