// Package prepbench measures the kubelet plugin's prepare and unprepare
// the way the kubelet drives them: NodePrepareResources and
// NodeUnprepareResources over the plugin's real DRA unix socket, with
// every claim fetched by the plugin from a real kube-apiserver on loopback
// (test/cluster), real checkpoint fsyncs and CDI spec writes, and a fake
// dgxh200 behind NVML. The plugin runs in the test process (plugin.Start
// with a real clientset at the plugin's default client limits) so that
// pkg/prepare's Observer can say where the time goes.
//
// BenchmarkPrepare runs every (mode, claims held, concurrency) case;
// TestPrepBenchSmall runs the same code at a tiny scale in `make test`
// so the benchmark cannot rot.
package prepbench
