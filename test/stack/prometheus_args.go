package stack

import (
	"fmt"
	"path/filepath"
)

// PrometheusCommand writes the config for opts and returns the Prometheus
// executable and its arguments to serve on addr (host:port), for a caller
// that runs it itself, e.g. as a process of the cluster that outlives the
// caller (make demo), where StartPrometheusWith ties it to this process.
func PrometheusCommand(opts PrometheusOptions, addr string) (bin string, args []string, err error) {
	if bin, err = PrometheusTool("prometheus"); err != nil {
		return "", nil, err
	}
	cfg := filepath.Join(opts.Dir, "prometheus.yml")
	if err := writePrometheusConfig(cfg, opts); err != nil {
		return "", nil, fmt.Errorf("prometheus config: %w", err)
	}
	return bin, prometheusArgs(cfg, opts.Dir, addr), nil
}

// prometheusArgs serve config cfg on addr with the TSDB under dir.
func prometheusArgs(cfg, dir, addr string) []string {
	return []string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--log.level=warn"}
}
