package main

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tierra-gpu/tierra/pkg/report"
)

func init() { subcommands = append(subcommands, newReportCommand) }

func newReportCommand() *cobra.Command {
	var (
		prometheus, output string
		endpoints          []string
		timeout            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Per tenant and tier: GPUs allocated, use measured, cost per hour, idle claims, right-size suggestions",
		Long: `report reads Tierra's metrics and prints, per tenant and tier, the claims and
devices prepared (and the physical GPUs under them), the SM use and GPU memory
their pods were measured using on shared GPUs, what the allocated devices cost
per hour, and which claims sat idle or would fit a smaller class.

The metrics come from a Prometheus server (--prometheus, instant queries) or
straight from the binaries' /metrics endpoints (--metrics: the controller for
cost, each node's kubelet plugin for devices and use). ` + "`tierra report`" + ` reads
these series: ` + strings.Join(report.Names, ", ") + `.`,
		Example: `  tierra report --prometheus http://prometheus.monitoring:9090
  tierra report --metrics tierra-controller.tierra-system:8080 --metrics node-1:8080 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (prometheus == "") == (len(endpoints) == 0) {
				return errors.New("give either --prometheus URL or one or more --metrics host:port")
			}
			if !slices.Contains(report.Formats, output) {
				return fmt.Errorf("--output %q: want one of %s", output, strings.Join(report.Formats, ", "))
			}
			client := &http.Client{Timeout: timeout}
			var samples []report.Sample
			var err error
			if prometheus != "" {
				samples, err = report.Query(cmd.Context(), client, prometheus)
			} else {
				samples, err = report.Scrape(cmd.Context(), client, endpoints)
			}
			if err != nil {
				return err
			}
			return report.Write(cmd.OutOrStdout(), report.Build(samples), output)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&prometheus, "prometheus", "", "base URL of a Prometheus server that scrapes Tierra, e.g. http://prometheus:9090")
	fl.StringSliceVar(&endpoints, "metrics", nil, "a /metrics endpoint to read instead of Prometheus (host:port or URL); repeat or separate with commas")
	fl.StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(report.Formats, ", "))
	fl.DurationVar(&timeout, "timeout", 10*time.Second, "timeout of each HTTP request")
	return cmd
}
