// Command tierra-controller renders the tier DeviceClasses of the cluster's
// TierPolicy, keeps them applied and pruned, and reports the policy's status.
package main

import (
	"errors"
	"os"
	"time"

	"github.com/tierra-gpu/tierra/internal/cli"
	"github.com/tierra-gpu/tierra/pkg/controller"
)

const usage = `tierra-controller keeps the tier DeviceClasses of Tierra (gpu.tierra.dev) in
sync with the cluster's TierPolicy:

  - renders <tier>.gpu.tierra.dev, gpu.tierra.dev and mig.gpu.tierra.dev and
    applies them with server-side apply (field manager tierra-controller),
    labelled app.kubernetes.io/managed-by=tierra-controller;
  - deletes classes with that label the policy no longer renders;
  - writes the policy's status: Ready (False with reason InvalidPolicy and the
    field errors when the spec does not validate; the last good classes then
    stay), observedGeneration, tierCount and, per tier, the devices published
    in ResourceSlices, those allocated to ResourceClaims, and the yield.

With --webhook-addr it also serves a validating admission webhook that refuses
a ResourceClaim or ResourceClaimTemplate whose GpuConfig (merged with its
classes' configs) prepare would refuse, with prepare's message.

With --metrics-addr (default :8080) it serves Prometheus metrics at /metrics,
computed from its caches at each scrape (the README's "Controller metrics").

A deleted TierPolicy leaves the classes it last rendered in place (claims
that name them keep allocating); recreating it re-renders and prunes.
`

func main() { cli.Main("tierra-controller", os.Args[1:], parseFlags, controller.Run) }

// parseFlags reads the flags and their environment variables into a
// validated controller.Config.
func parseFlags(fs *cli.FlagSet, args []string) (controller.Config, error) {
	fs.SetHeader(usage)
	var cfg controller.Config
	var qps float64
	fs.String(&cfg.Kubeconfig, "kubeconfig", "KUBECONFIG", "",
		"path to a kubeconfig; empty uses the in-cluster service account")
	fs.String(&cfg.PolicyName, "policy-name", "TIERRA_POLICY_NAME", controller.DefaultPolicyName,
		"name of the cluster-scoped TierPolicy to follow")
	fs.Duration(&cfg.Resync, "resync", "TIERRA_RESYNC", controller.DefaultResync,
		"informer resync period: how often everything is re-checked without events; 0 disables", notNegative[time.Duration])
	fs.Float(&qps, "kube-api-qps", "TIERRA_KUBE_API_QPS", controller.DefaultKubeAPIQPS,
		"queries per second to the API server", notNegative[float64])
	fs.Int(&cfg.KubeAPIBurst, "kube-api-burst", "TIERRA_KUBE_API_BURST", controller.DefaultKubeAPIBurst,
		"burst of queries to the API server above the QPS", notNegative[int])
	fs.Duration(&cfg.StatusDelay, "status-delay", "TIERRA_STATUS_DELAY", controller.DefaultStatusDelay,
		"batches status writes caused by ResourceSlice and ResourceClaim changes: at most one per delay", notNegative[time.Duration])
	fs.String(&cfg.WebhookAddr, "webhook-addr", "TIERRA_WEBHOOK_ADDR", "",
		"serve the ResourceClaim/ResourceClaimTemplate validation webhook (GpuConfig checked as prepare checks it) on this address, e.g. :9443; empty disables it")
	fs.String(&cfg.WebhookCertDir, "webhook-cert-dir", "TIERRA_WEBHOOK_CERT_DIR", "",
		"directory with the webhook's tls.crt and tls.key, re-read when they change")
	fs.String(&cfg.MetricsAddr, "metrics-addr", "TIERRA_METRICS_ADDR", ":8080",
		"serve Prometheus metrics (per tier and node GPUs, allocated, stranded, yield; pending claims and their age; cost per tenant) at /metrics on this address; empty disables it")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.KubeAPIQPS = float32(qps)
	return cfg, cfg.Validate()
}

func notNegative[T int | float64 | time.Duration](v T) error {
	if v < 0 {
		return errors.New("want a value of 0 or more")
	}
	return nil
}
