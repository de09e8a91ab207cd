// Package controller is tierra-controller: it watches the cluster's
// TierPolicy, keeps the tier DeviceClasses rendered by pkg/tiers applied
// (server-side apply) and pruned, and reports validation and per-tier device
// counts in the policy's status.
package controller

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager is the server-side apply field manager of every write.
const FieldManager = "tierra-controller"

// Config configures Run. The zero value, apart from the connection, is
// usable: see the field defaults.
type Config struct {
	// Kubeconfig is a kubeconfig path; empty uses the in-cluster config.
	Kubeconfig string
	// RESTConfig, when set, is used instead of Kubeconfig (tests).
	RESTConfig *rest.Config
	// PolicyName is the cluster-scoped TierPolicy to follow. Default "default".
	PolicyName string
	// Resync is the informers' resync period; 0 disables resyncs.
	Resync time.Duration
	// KubeAPIQPS and KubeAPIBurst limit the client. Default 20 and 40.
	KubeAPIQPS   float32
	KubeAPIBurst int
	// StatusDelay batches status updates caused by ResourceSlice and
	// ResourceClaim events: at most one status write per delay. Default 1s.
	StatusDelay time.Duration
	// WebhookAddr, when set, serves the claim validation webhook
	// (pkg/webhook) on this address, e.g. ":9443".
	WebhookAddr string
	// WebhookCertDir holds the webhook's tls.crt and tls.key.
	WebhookCertDir string
	// MetricsAddr, when set, serves Prometheus metrics (pkg/metrics: the
	// controller's tier, pending-claim and cost metrics, plus the Go,
	// process and client-go ones) at /metrics on this address, e.g.
	// ":8080"; port 0 picks a free port.
	MetricsAddr string
	// OnMetricsServing, when set, is called with the address the metrics
	// listener bound (tests pass port 0).
	OnMetricsServing func(addr string)
}

// Defaults of Config, also the flags' defaults in cmd/tierra-controller.
const (
	DefaultPolicyName   = "default"
	DefaultKubeAPIQPS   = 20
	DefaultKubeAPIBurst = 40
	DefaultStatusDelay  = time.Second
	// DefaultResync is the binary's resync period; in Config, 0 disables
	// resyncs.
	DefaultResync = 10 * time.Minute
)

// Default fills in the unset fields that have a default.
func (c *Config) Default() {
	if c.PolicyName == "" {
		c.PolicyName = DefaultPolicyName
	}
	if c.KubeAPIQPS == 0 {
		c.KubeAPIQPS = DefaultKubeAPIQPS
	}
	if c.KubeAPIBurst == 0 {
		c.KubeAPIBurst = DefaultKubeAPIBurst
	}
	if c.StatusDelay == 0 {
		c.StatusDelay = DefaultStatusDelay
	}
}

// Validate reports settings Run refuses.
func (c *Config) Validate() error {
	switch {
	case c.Resync < 0:
		return errors.New("resync must not be negative")
	case c.KubeAPIQPS < 0 || c.KubeAPIBurst < 0:
		return errors.New("kube-api-qps and kube-api-burst must not be negative")
	case c.StatusDelay < 0:
		return errors.New("status delay must not be negative")
	case c.WebhookAddr != "" && c.WebhookCertDir == "":
		return errors.New("webhook-addr needs webhook-cert-dir (a directory with tls.crt and tls.key)")
	}
	return nil
}

func (c *Config) restConfig() (*rest.Config, error) {
	var rc *rest.Config
	if c.RESTConfig != nil {
		rc = rest.CopyConfig(c.RESTConfig)
	} else {
		var err error
		// An empty path falls back to the in-cluster config.
		rc, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %q: %w", c.Kubeconfig, err)
		}
	}
	rc.QPS, rc.Burst = c.KubeAPIQPS, c.KubeAPIBurst
	rc.UserAgent = FieldManager
	return rc, nil
}
