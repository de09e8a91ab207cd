// Package crash kills the kubelet plugin, run as a real process against a
// real control plane (test/cluster), at every fail point of prepare and
// unprepare (pkg/failpoint), restarts it and checks that each claim ends
// prepared exactly once or cleanly unprepared, with no MIG instance or CDI
// spec left behind. The fake machine keeps its hardware state in a file
// (nvgpu.FakeStateEnv), so a crash leaks what real GPUs would keep.
package crash
