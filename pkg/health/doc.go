// Package health turns GPU health events into device taints that clear
// themselves, and into the health the kubelet shows in pod status.
//
// A Tracker is a pure state machine: the plugin feeds it classified events
// (Observe), whether each GPU answers NVML (SetAnswering) and the passing of
// time (Expire, on an injected clock); it answers which taints each
// published device carries (Taints) and how healthy it is (Health).
//
// A fault on a whole GPU concerns every device of that GPU (whole, shared
// slots, all MIG placements); a fault on a MIG instance concerns the
// published MIG placements that overlap the instance's memory slices. A
// GPU's faults clear together once it has answered NVML, and no tainting
// event has arrived, for its quiet period; each tainting event within the
// flap window of the previous ones doubles that period, up to the policy's
// cap.
//
// The plugin records the tracker's Status in its state directory on every
// change; a restarted plugin loads it (LoadStatus, which moves a corrupt
// record aside) and puts it back (Restore), so taints and their clear times
// survive a restart.
package health
