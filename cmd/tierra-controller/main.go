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

Every flag can also be set by the environment variable named in brackets;
a flag given on the command line wins.

Flags:
`

func main() {
	cfg, err := parseFlags(os.Args[1:])
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
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func parseFlags(args []string) (controller.Config, error) {
	fs := flag.NewFlagSet("tierra-controller", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	var cfg controller.Config
	var qps float64
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", env("KUBECONFIG", ""),
		"path to a kubeconfig; empty uses the in-cluster service account [KUBECONFIG]")
	fs.StringVar(&cfg.PolicyName, "policy-name", env("TIERRA_POLICY_NAME", "default"),
		"name of the cluster-scoped TierPolicy to follow [TIERRA_POLICY_NAME]")
	fs.DurationVar(&cfg.Resync, "resync", envDuration("TIERRA_RESYNC", 10*time.Minute),
		"informer resync period: how often everything is re-checked without events; 0 disables [TIERRA_RESYNC]")
	fs.Float64Var(&qps, "kube-api-qps", envFloat("TIERRA_KUBE_API_QPS", 20),
		"queries per second to the API server [TIERRA_KUBE_API_QPS]")
	fs.IntVar(&cfg.KubeAPIBurst, "kube-api-burst", envInt("TIERRA_KUBE_API_BURST", 40),
		"burst of queries to the API server above the QPS [TIERRA_KUBE_API_BURST]")
	fs.DurationVar(&cfg.StatusDelay, "status-delay", envDuration("TIERRA_STATUS_DELAY", time.Second),
		"batches status writes caused by ResourceSlice and ResourceClaim changes: at most one per delay [TIERRA_STATUS_DELAY]")
	klog.InitFlags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg.KubeAPIQPS = float32(qps)
	return cfg, envErr
}

// envErr records the first malformed environment variable.
var envErr error

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envParse[T any](name string, def T, parse func(string) (T, error)) T {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	out, err := parse(v)
	if err != nil {
		if envErr == nil {
			envErr = fmt.Errorf("environment variable %s=%q: %w", name, v, err)
		}
		return def
	}
	return out
}

func envDuration(name string, def time.Duration) time.Duration {
	return envParse(name, def, time.ParseDuration)
}

func envFloat(name string, def float64) float64 {
	return envParse(name, def, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
}

func envInt(name string, def int) int { return envParse(name, def, strconv.Atoi) }
