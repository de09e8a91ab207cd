// Package observability tests Tierra's metrics the way an operator reads
// them: a real Prometheus (Debian's 2.42, unpacked by `make prometheus`)
// scrapes tierra-controller and the simulated nodes' kubelet plugins on the
// local control plane, and the tests ask it PromQL; promtool checks the
// chart's recording and alerting rules (deployments/helm/tierra/rules) and
// runs their unit tests.
package observability
