// Command tierra-controller renders the tier DeviceClasses of the cluster's
// TierPolicy, keeps them applied and pruned, and reports the policy's status.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"k8s.io/klog/v2"

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

Every flag can also be set by the environment variable named in brackets;
a flag given on the command line wins.

Flags:
`

func main() {
	cfg, err := parseFlags(os.Args[1:], os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tierra-controller:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background())
	if err := controller.Run(ctx, cfg); err != nil {
		klog.FromContext(ctx).Error(err, "tierra-controller failed")
		stop()
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	stop()
	klog.FlushAndExit(klog.ExitFlushTimeout, 0)
}

func parseFlags(args []string, lookup func(string) (string, bool)) (controller.Config, error) {
	fs := flag.NewFlagSet("tierra-controller", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	e := envReader{lookup: lookup}
	var cfg controller.Config
	var qps float64
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", e.str("KUBECONFIG", ""),
		"path to a kubeconfig; empty uses the in-cluster service account [KUBECONFIG]")
	fs.StringVar(&cfg.PolicyName, "policy-name", e.str("TIERRA_POLICY_NAME", "default"),
		"name of the cluster-scoped TierPolicy to follow [TIERRA_POLICY_NAME]")
	fs.DurationVar(&cfg.Resync, "resync", parseEnv(&e, "TIERRA_RESYNC", 10*time.Minute, time.ParseDuration),
		"informer resync period: how often everything is re-checked without events; 0 disables [TIERRA_RESYNC]")
	fs.Float64Var(&qps, "kube-api-qps", parseEnv(&e, "TIERRA_KUBE_API_QPS", 20, parseFloat),
		"queries per second to the API server [TIERRA_KUBE_API_QPS]")
	fs.IntVar(&cfg.KubeAPIBurst, "kube-api-burst", parseEnv(&e, "TIERRA_KUBE_API_BURST", 40, strconv.Atoi),
		"burst of queries to the API server above the QPS [TIERRA_KUBE_API_BURST]")
	fs.DurationVar(&cfg.StatusDelay, "status-delay", parseEnv(&e, "TIERRA_STATUS_DELAY", time.Second, time.ParseDuration),
		"batches status writes caused by ResourceSlice and ResourceClaim changes: at most one per delay [TIERRA_STATUS_DELAY]")
	fs.StringVar(&cfg.WebhookAddr, "webhook-addr", e.str("TIERRA_WEBHOOK_ADDR", ""),
		"serve the ResourceClaim/ResourceClaimTemplate validation webhook (GpuConfig checked as prepare checks it) on this address, e.g. :9443; empty disables it [TIERRA_WEBHOOK_ADDR]")
	fs.StringVar(&cfg.WebhookCertDir, "webhook-cert-dir", e.str("TIERRA_WEBHOOK_CERT_DIR", ""),
		"directory with the webhook's tls.crt and tls.key, re-read when they change [TIERRA_WEBHOOK_CERT_DIR]")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", e.str("TIERRA_METRICS_ADDR", ":8080"),
		"serve Prometheus metrics (per tier and node GPUs, allocated, stranded, yield; pending claims and their age; cost per tenant) at /metrics on this address; empty disables it [TIERRA_METRICS_ADDR]")
	klog.InitFlags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg.KubeAPIQPS = float32(qps)
	return cfg, e.err
}

// envReader reads flag defaults from the environment and keeps the first
// malformed value's error.
type envReader struct {
	lookup func(string) (string, bool)
	err    error
}

func (e *envReader) str(name, def string) string {
	if v, ok := e.lookup(name); ok {
		return v
	}
	return def
}

func parseEnv[T any](e *envReader, name string, def T, parse func(string) (T, error)) T {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	out, err := parse(v)
	if err != nil {
		if e.err == nil {
			e.err = fmt.Errorf("environment variable %s=%q: %w", name, v, err)
		}
		return def
	}
	return out
}

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
