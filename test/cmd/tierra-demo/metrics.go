package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	usereport "github.com/tierra-gpu/tierra/pkg/report"
	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/stack"
)

// The demo's metrics endpoints and its Prometheus are on fixed loopback
// ports, so that a second `make demo` finds them where the first put them.
const (
	prometheusAddr        = "127.0.0.1:19090"
	controllerMetricsAddr = "127.0.0.1:18080"
	firstNodeMetricsPort  = 18081
	// demoIdleWindow is the plugins' --idle-window in the demo (they read
	// use every 5 s): short, so that the idle claim shows within the run.
	demoIdleWindow = 20 * time.Second
)

// nodeMetricsAddr is the i-th GPU node's plugin metrics address.
func nodeMetricsAddr(i int) string { return fmt.Sprintf("127.0.0.1:%d", firstNodeMetricsPort+i) }

// startPrometheus runs a Prometheus beside the control plane (it stays up
// with the demo) that scrapes the controller and every node's plugin and
// evaluates the chart's rules.
func startPrometheus(c *cluster.Cluster, root string, nodes int) error {
	var plugins []string
	for i := range nodes {
		plugins = append(plugins, nodeMetricsAddr(i))
	}
	opts := stack.PrometheusOptions{
		Dir: filepath.Join(c.StateDir(), "prometheus"),
		Targets: []stack.Target{
			{Job: "tierra-controller", Addrs: []string{controllerMetricsAddr}},
			{Job: "tierra-kubelet-plugin", Addrs: plugins},
		},
		RuleFiles: []string{filepath.Join(root, "deployments", "helm", "tierra", "rules", "tierra.rules.yaml")},
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return fmt.Errorf("prometheus dir: %w", err)
	}
	bin, args, err := stack.PrometheusCommand(opts, prometheusAddr)
	if err != nil {
		return err
	}
	return runOnce(c, "prometheus", bin, args...)
}

// showUse waits until Prometheus has scraped the pods' GPU use (and the
// idle window has passed for the claim whose pod uses nothing), then prints
// `tierra report` from it.
func showUse(ctx context.Context) error {
	url := "http://" + prometheusAddr
	step("per-tenant GPU use, from Prometheus at " + url + " (tierra report --prometheus " + url + ")")
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(demoIdleWindow + 30*time.Second)
	var samples []usereport.Sample
	for {
		var err error
		samples, err = usereport.Query(ctx, client, url)
		if err != nil {
			return err
		}
		if ready(samples) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return usereport.Write(os.Stdout, usereport.Build(samples), "table")
}

// ready reports whether per-pod use and an idle claim are both in.
func ready(samples []usereport.Sample) bool {
	var use, idle bool
	for _, s := range samples {
		use = use || s.Name == usereport.PodUtilization
		idle = idle || (s.Name == usereport.ClaimIdle && s.Value > 0)
	}
	return use && idle
}
