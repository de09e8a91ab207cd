// Package crash kills the kubelet plugin, run as a real process against a
// real control plane (test/cluster), at every fail point of prepare and
// unprepare (pkg/failpoint), restarts it and checks that each claim ends
// prepared exactly once or cleanly unprepared, with no MIG instance, MPS
// daemon, time-slice or CDI spec left behind. Claims are exclusive, MIG,
// MPS and time-sliced, one node per tier of the test's TierPolicy. The fake
// machine keeps its hardware state in a file (nvgpu.FakeStateEnv), and the
// plugin runs ./fakesharing for nvidia-cuda-mps-control and nvidia-smi
// (--sharing-runner=exec), which keep theirs on disk, so a crash leaks what
// real GPUs would keep.
package crash
