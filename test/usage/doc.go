// Package usage checks Tierra's per-pod GPU use and idle-claim series
// against a real Prometheus (Debian's 2.42, unpacked by `make prometheus`):
// the collectors of pkg/metrics over a fake machine running fake processes
// (TIERRA_FAKE_PROCESSES) and a fake /proc tree, served by metrics.Serve
// and scraped on loopback; the assertions are PromQL answers. It needs no
// control plane.
package usage
